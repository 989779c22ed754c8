using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Naani.Tests.Browser;

/// A fact that runs where Debian's chromium is installed (.ci/run installs it), and is reported as skipped, with the
/// reason, elsewhere.
public sealed class ChromiumFactAttribute : FactAttribute
{
    public ChromiumFactAttribute()
    {
        if (HeadlessChromium.Executable is null)
            Skip = "chromium is absent; install Debian's chromium and chromium-driver to run this test (.ci/run installs them).";
    }
}

/// Headless Chromium driven through the Chrome DevTools Protocol over one WebSocket (no Selenium, no NuGet package):
/// the browser is started with --remote-debugging-port=0, the port is read from the profile's DevToolsActivePort, and
/// the test talks to the first page target. Commands are JSON messages {id, method, params} answered by {id, result}
/// or {id, error}; events ({method, params}) feed the load waits and ConsoleErrors.
/// What a page test needs: navigate, evaluate, wait, click, press a key, screenshot, console errors, canvas pixels.
public sealed class HeadlessChromium : IAsyncDisposable
{
    static readonly TimeSpan CommandTimeout = TimeSpan.FromSeconds(60);

    /// /usr/bin/chromium, else chromium (or chromium-browser) found on PATH; null when there is none.
    public static readonly string? Executable = FindExecutable();

    readonly Process process;
    readonly string profile;
    readonly ClientWebSocket socket = new();
    readonly CancellationTokenSource stop = new();
    readonly ConcurrentDictionary<int, TaskCompletionSource<JsonElement>> pending = new();
    readonly SemaphoreSlim sendLock = new(1, 1);
    readonly List<string> consoleErrors = [];
    readonly StringBuilder browserLog = new();
    Task receiving = Task.CompletedTask;
    TaskCompletionSource loaded = NewSignal();
    int nextId;

    HeadlessChromium(Process process, string profile)
    {
        this.process = process;
        this.profile = profile;
    }

    /// console.error messages, uncaught exceptions and error-level log entries (failed resource loads, for one), in the
    /// order they came, for the whole session.
    public IReadOnlyList<string> ConsoleErrors
    {
        get
        {
            lock (consoleErrors) return [.. consoleErrors];
        }
    }

    /// Launches chromium headless on about:blank with a fresh temporary profile and a width x height viewport.
    public static async Task<HeadlessChromium> StartAsync(int width = 1280, int height = 900)
    {
        var executable = Executable ?? throw new InvalidOperationException("chromium is not installed (Debian: apt-get install chromium).");
        var profile = Directory.CreateTempSubdirectory("naani-chromium-").FullName;
        var start = new ProcessStartInfo(executable)
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (var argument in new[]
        {
            "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--remote-debugging-port=0",
            $"--user-data-dir={profile}", "--no-first-run", "--no-default-browser-check", "--disable-extensions",
            "--disable-background-networking", "--disable-sync", "--mute-audio", "--hide-scrollbars",
            $"--window-size={width},{height}", "about:blank",
        })
            start.ArgumentList.Add(argument);
        var process = new Process { StartInfo = start };
        var browser = new HeadlessChromium(process, profile);
        process.OutputDataReceived += (_, e) => browser.AppendBrowserLog(e.Data);
        process.ErrorDataReceived += (_, e) => browser.AppendBrowserLog(e.Data);
        try
        {
            process.Start();
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();
            await browser.ConnectAsync(width, height);
            return browser;
        }
        catch
        {
            await browser.DisposeAsync();
            throw;
        }
    }

    /// Opens url (file://, http://127.0.0.1...) and waits for its load event.
    public async Task NavigateAsync(string url)
    {
        loaded = NewSignal();
        var result = await SendAsync("Page.navigate", new JsonObject { ["url"] = url });
        if (result.TryGetProperty("errorText", out var error) && error.GetString() is { Length: > 0 } text)
            throw new InvalidOperationException($"Chromium could not open {url}: {text}");
        await loaded.Task.WaitAsync(CommandTimeout);
    }

    /// Evaluates a JavaScript expression in the page, awaiting it when it is a promise, and returns its value as JSON
    /// (null for undefined). A thrown exception becomes an InvalidOperationException with the exception's text.
    public async Task<JsonElement> EvaluateAsync(string expression)
    {
        var result = await SendAsync("Runtime.evaluate", new JsonObject
        {
            ["expression"] = expression,
            ["returnByValue"] = true,
            ["awaitPromise"] = true,
        });
        if (result.TryGetProperty("exceptionDetails", out var details))
            throw new InvalidOperationException($"JavaScript threw evaluating `{Shorten(expression)}`: {ExceptionText(details)}");
        return result.GetProperty("result").TryGetProperty("value", out var value) ? value.Clone() : JsonDocument.Parse("null").RootElement;
    }

    /// Polls jsCondition (every 50 ms) until it is truthy; false when timeout passes first.
    public async Task<bool> WaitForAsync(string jsCondition, TimeSpan timeout)
    {
        var watch = Stopwatch.StartNew();
        while (true)
        {
            var value = await EvaluateAsync($"!!({jsCondition})");
            if (value.ValueKind == JsonValueKind.True) return true;
            if (watch.Elapsed > timeout) return false;
            await Task.Delay(50);
        }
    }

    /// A real mouse click (moved, pressed, released) at the centre of the first element matching cssSelector, after
    /// scrolling it into view.
    public async Task ClickAsync(string cssSelector)
    {
        var centre = await EvaluateAsync($$"""
            (() => {
              const e = document.querySelector({{JsonSerializer.Serialize(cssSelector)}});
              if (!e) throw new Error('no element matches ' + {{JsonSerializer.Serialize(cssSelector)}});
              e.scrollIntoView({ block: 'center', inline: 'center' });
              const r = e.getBoundingClientRect();
              return { x: r.left + r.width / 2, y: r.top + r.height / 2 };
            })()
            """);
        double x = centre.GetProperty("x").GetDouble(), y = centre.GetProperty("y").GetDouble();
        await SendAsync("Input.dispatchMouseEvent", new JsonObject { ["type"] = "mouseMoved", ["x"] = x, ["y"] = y });
        foreach (var type in new[] { "mousePressed", "mouseReleased" })
            await SendAsync("Input.dispatchMouseEvent", new JsonObject
            {
                ["type"] = type,
                ["x"] = x,
                ["y"] = y,
                ["button"] = "left",
                ["buttons"] = type == "mousePressed" ? 1 : 0,
                ["clickCount"] = 1,
            });
    }

    /// A real key press (keyDown, keyUp) sent to the focused element: key as the DOM names it ("ArrowRight", "a").
    public async Task PressKeyAsync(string key)
    {
        int virtualKey = key switch
        {
            "ArrowLeft" => 37,
            "ArrowUp" => 38,
            "ArrowRight" => 39,
            "ArrowDown" => 40,
            "Enter" => 13,
            "Escape" => 27,
            "Tab" => 9,
            " " => 32,
            _ when key.Length == 1 => char.ToUpperInvariant(key[0]),
            _ => 0,
        };
        var code = key.Length == 1 && char.IsLetter(key[0]) ? "Key" + char.ToUpperInvariant(key[0]) : key;
        foreach (var type in new[] { "keyDown", "keyUp" })
            await SendAsync("Input.dispatchKeyEvent", new JsonObject
            {
                ["type"] = type,
                ["key"] = key,
                ["code"] = code,
                ["windowsVirtualKeyCode"] = virtualKey,
                ["nativeVirtualKeyCode"] = virtualKey,
            });
    }

    /// A PNG of the viewport (or of the whole page with fullPage), written to path and returned.
    public async Task<byte[]> ScreenshotAsync(string path, bool fullPage = false)
    {
        var parameters = new JsonObject { ["format"] = "png" };
        if (fullPage)
        {
            var metrics = await SendAsync("Page.getLayoutMetrics", new JsonObject());
            var size = metrics.GetProperty("cssContentSize");
            parameters["captureBeyondViewport"] = true;
            parameters["clip"] = new JsonObject
            {
                ["x"] = 0,
                ["y"] = 0,
                ["width"] = Math.Ceiling(size.GetProperty("width").GetDouble()),
                ["height"] = Math.Ceiling(size.GetProperty("height").GetDouble()),
                ["scale"] = 1,
            };
        }
        var result = await SendAsync("Page.captureScreenshot", parameters);
        var png = Convert.FromBase64String(result.GetProperty("data").GetString()!);
        var folder = Path.GetDirectoryName(Path.GetFullPath(path));
        if (folder is not null) Directory.CreateDirectory(folder);
        await File.WriteAllBytesAsync(path, png);
        return png;
    }

    /// How many pixels of the canvas are painted (not transparent) and differ from its first pixel: more than zero
    /// means something was drawn beyond a uniform background. The canvas is copied onto a 2D canvas first, so WebGL
    /// canvases count too.
    public async Task<int> NonBlankPixelsAsync(string canvasCssSelector)
    {
        var count = await EvaluateAsync($$"""
            (() => {
              const c = document.querySelector({{JsonSerializer.Serialize(canvasCssSelector)}});
              if (!c) throw new Error('no canvas matches ' + {{JsonSerializer.Serialize(canvasCssSelector)}});
              if (!c.width || !c.height) return 0;
              const copy = document.createElement('canvas');
              copy.width = c.width; copy.height = c.height;
              const g = copy.getContext('2d');
              g.drawImage(c, 0, 0);
              const d = g.getImageData(0, 0, c.width, c.height).data;
              let n = 0;
              for (let i = 0; i < d.length; i += 4)
                if (d[i + 3] !== 0 && (d[i] !== d[0] || d[i + 1] !== d[1] || d[i + 2] !== d[2] || d[i + 3] !== d[3])) n++;
              return n;
            })()
            """);
        return count.GetInt32();
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (socket.State == WebSocketState.Open)
                await SendAsync("Browser.close", new JsonObject()).WaitAsync(TimeSpan.FromSeconds(5));
        }
        catch (Exception e) when (e is TimeoutException or InvalidOperationException or WebSocketException or OperationCanceledException)
        {
            // The process is killed below either way.
        }
        try
        {
            if (!process.HasExited && !process.WaitForExit(TimeSpan.FromSeconds(5)))
                process.Kill(entireProcessTree: true);
            if (!process.HasExited) process.WaitForExit(TimeSpan.FromSeconds(10));
        }
        catch (InvalidOperationException)
        {
            // Never started.
        }
        stop.Cancel();
        try
        {
            await receiving.WaitAsync(TimeSpan.FromSeconds(5));
        }
        catch (Exception e) when (e is TimeoutException or OperationCanceledException or WebSocketException)
        {
        }
        socket.Dispose();
        process.Dispose();
        stop.Dispose();
        sendLock.Dispose();
        for (int attempt = 0; attempt < 10 && Directory.Exists(profile); attempt++)
        {
            try
            {
                Directory.Delete(profile, recursive: true);
            }
            catch (IOException)
            {
                await Task.Delay(200);   // a helper process still closing its files
            }
        }
    }

    async Task ConnectAsync(int width, int height)
    {
        // Chromium writes the port it chose on the first line of <profile>/DevToolsActivePort once it listens.
        var portFile = Path.Combine(profile, "DevToolsActivePort");
        var watch = Stopwatch.StartNew();
        int port = 0;
        while (port == 0)
        {
            if (process.HasExited)
                throw new InvalidOperationException($"chromium exited with {process.ExitCode} before listening:\n{BrowserLog()}");
            if (watch.Elapsed > TimeSpan.FromSeconds(60))
                throw new TimeoutException($"chromium did not write {portFile} within 60 s:\n{BrowserLog()}");
            try
            {
                if (File.Exists(portFile) && File.ReadAllLines(portFile) is [var first, ..] && int.TryParse(first, out var p)) port = p;
            }
            catch (IOException)
            {
                // Being written; read again.
            }
            if (port == 0) await Task.Delay(50);
        }

        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        string? webSocketUrl = null;
        while (webSocketUrl is null)
        {
            using var targets = JsonDocument.Parse(await http.GetStringAsync($"http://127.0.0.1:{port}/json/list"));
            webSocketUrl = targets.RootElement.EnumerateArray()
                .Where(t => t.GetProperty("type").GetString() == "page")
                .Select(t => t.GetProperty("webSocketDebuggerUrl").GetString())
                .FirstOrDefault();
            if (webSocketUrl is null)
            {
                if (watch.Elapsed > TimeSpan.FromSeconds(60)) throw new TimeoutException($"chromium opened no page target:\n{BrowserLog()}");
                await Task.Delay(50);
            }
        }
        await socket.ConnectAsync(new Uri(webSocketUrl), stop.Token);
        receiving = Task.Run(ReceiveLoop);
        foreach (var domain in new[] { "Runtime", "Page", "Log" })
            await SendAsync(domain + ".enable", new JsonObject());
        await SendAsync("Emulation.setDeviceMetricsOverride", new JsonObject
        {
            ["width"] = width,
            ["height"] = height,
            ["deviceScaleFactor"] = 1,
            ["mobile"] = false,
        });
    }

    async Task<JsonElement> SendAsync(string method, JsonObject parameters)
    {
        int id = Interlocked.Increment(ref nextId);
        var answer = new TaskCompletionSource<JsonElement>(TaskCreationOptions.RunContinuationsAsynchronously);
        pending[id] = answer;
        var message = Encoding.UTF8.GetBytes(new JsonObject { ["id"] = id, ["method"] = method, ["params"] = parameters }.ToJsonString());
        await sendLock.WaitAsync();
        try
        {
            await socket.SendAsync(message, WebSocketMessageType.Text, endOfMessage: true, stop.Token);
        }
        finally
        {
            sendLock.Release();
        }
        try
        {
            return await answer.Task.WaitAsync(CommandTimeout);
        }
        catch (TimeoutException)
        {
            throw new TimeoutException($"chromium did not answer {method} within {CommandTimeout.TotalSeconds} s.");
        }
        finally
        {
            pending.TryRemove(id, out _);
        }
    }

    async Task ReceiveLoop()
    {
        var buffer = new byte[1 << 16];
        using var message = new MemoryStream();
        try
        {
            while (socket.State == WebSocketState.Open && !stop.IsCancellationRequested)
            {
                var part = await socket.ReceiveAsync(buffer, stop.Token);
                if (part.MessageType == WebSocketMessageType.Close) break;
                message.Write(buffer, 0, part.Count);
                if (!part.EndOfMessage) continue;
                using (var document = JsonDocument.Parse(message.ToArray()))
                    Dispatch(document.RootElement);
                message.SetLength(0);
            }
        }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException)
        {
            // The browser closed.
        }
        foreach (var answer in pending.Values)
            answer.TrySetException(new InvalidOperationException($"chromium closed the DevTools connection:\n{BrowserLog()}"));
    }

    void Dispatch(JsonElement message)
    {
        if (message.TryGetProperty("id", out var idElement))
        {
            if (!pending.TryGetValue(idElement.GetInt32(), out var answer)) return;
            if (message.TryGetProperty("error", out var error))
                answer.TrySetException(new InvalidOperationException($"DevTools error: {error.GetRawText()}"));
            else
                answer.TrySetResult(message.GetProperty("result").Clone());
            return;
        }
        var method = message.GetProperty("method").GetString();
        var parameters = message.TryGetProperty("params", out var p) ? p : default;
        switch (method)
        {
            case "Page.loadEventFired":
                loaded.TrySetResult();
                break;
            case "Runtime.consoleAPICalled" when parameters.GetProperty("type").GetString() == "error":
                AddError("console.error: " + string.Join(" ", parameters.GetProperty("args").EnumerateArray().Select(RemoteObjectText)));
                break;
            case "Runtime.exceptionThrown":
                AddError("uncaught: " + ExceptionText(parameters.GetProperty("exceptionDetails")));
                break;
            case "Log.entryAdded" when parameters.GetProperty("entry").GetProperty("level").GetString() == "error":
                var entry = parameters.GetProperty("entry");
                var url = entry.TryGetProperty("url", out var u) ? " (" + u.GetString() + ")" : "";
                AddError($"log: {entry.GetProperty("text").GetString()}{url}");
                break;
        }
    }

    void AddError(string text)
    {
        lock (consoleErrors) consoleErrors.Add(text);
    }

    void AppendBrowserLog(string? line)
    {
        if (line is null) return;
        lock (browserLog)
            if (browserLog.Length < 20_000) browserLog.AppendLine(line);
    }

    string BrowserLog()
    {
        lock (browserLog) return browserLog.ToString();
    }

    static string RemoteObjectText(JsonElement value) =>
        value.TryGetProperty("value", out var v) ? (v.ValueKind == JsonValueKind.String ? v.GetString()! : v.GetRawText())
        : value.TryGetProperty("description", out var d) ? d.GetString() ?? ""
        : value.GetProperty("type").GetString() ?? "";

    static string ExceptionText(JsonElement details) =>
        details.TryGetProperty("exception", out var exception) && exception.TryGetProperty("description", out var description)
            ? description.GetString() ?? ""
            : details.GetProperty("text").GetString() ?? "";

    static string Shorten(string expression) => expression.Length <= 120 ? expression : expression[..117] + "...";

    static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    static string? FindExecutable()
    {
        if (File.Exists("/usr/bin/chromium")) return "/usr/bin/chromium";
        foreach (var folder in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
            foreach (var name in new[] { "chromium", "chromium-browser" })
                if (File.Exists(Path.Combine(folder, name))) return Path.Combine(folder, name);
        return null;
    }
}
