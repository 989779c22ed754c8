using Naani.Tests.Serialization;

namespace Naani.Tests.Browser;

/// The harness itself, on a tiny page: navigation, evaluation, a real click, canvas pixels, console errors, screenshots.
public sealed class HeadlessChromiumTests : IDisposable
{
    readonly TempDirectory temp = new();

    public void Dispose() => temp.Dispose();

    const string Page = """
        <!DOCTYPE html>
        <html><head><meta charset="utf-8"><title>harness</title></head>
        <body>
          <canvas id="c" width="40" height="30"></canvas>
          <canvas id="blank" width="10" height="10"></canvas>
          <div style="height: 2000px"></div>
          <button id="b">press</button>
          <script>
            window.clicks = 0;
            const g = document.getElementById('c').getContext('2d');
            g.fillStyle = '#000'; g.fillRect(0, 0, 40, 30);
            g.fillStyle = '#f00'; g.fillRect(10, 10, 5, 4);
            document.getElementById('b').addEventListener('click', () => { window.clicks++; });
            window.keys = [];
            document.addEventListener('keydown', e => window.keys.push(e.key));
          </script>
        </body></html>
        """;

    string WritePage(string name, string html)
    {
        var path = temp.File(name);
        File.WriteAllText(path, html);
        return new Uri(path).AbsoluteUri;
    }

    [ChromiumFact]
    public async Task Chromium_navigates_evaluates_clicks_and_reads_canvas_pixels()
    {
        await using var browser = await HeadlessChromium.StartAsync(800, 600);
        await browser.NavigateAsync(WritePage("page.html", Page));

        Assert.Equal("harness", (await browser.EvaluateAsync("document.title")).GetString());
        Assert.Equal(42, (await browser.EvaluateAsync("Promise.resolve(40 + 2)")).GetInt32());
        var thrown = await Assert.ThrowsAsync<InvalidOperationException>(() => browser.EvaluateAsync("(() => { throw new Error('boom'); })()"));
        Assert.Contains("boom", thrown.Message);

        await browser.ClickAsync("#b");   // below the fold: scrolled into view first
        Assert.True(await browser.WaitForAsync("window.clicks === 1", TimeSpan.FromSeconds(5)));
        await browser.PressKeyAsync("ArrowRight");
        Assert.True(await browser.WaitForAsync("window.keys.includes('ArrowRight')", TimeSpan.FromSeconds(5)));
        Assert.False(await browser.WaitForAsync("window.clicks === 5", TimeSpan.FromMilliseconds(200)));

        Assert.Equal(20, await browser.NonBlankPixelsAsync("#c"));
        Assert.Equal(0, await browser.NonBlankPixelsAsync("#blank"));
        Assert.Empty(browser.ConsoleErrors);
    }

    [ChromiumFact]
    public async Task Chromium_collects_console_errors_uncaught_exceptions_and_failed_loads()
    {
        await using var browser = await HeadlessChromium.StartAsync();
        await browser.NavigateAsync(WritePage("errors.html", """
            <!DOCTYPE html><html><body>
            <img src="missing.png">
            <script>
              console.error('something', 42);
              console.log('fine');
              setTimeout(() => { throw new Error('late'); }, 0);
            </script></body></html>
            """));
        Assert.True(await browser.WaitForAsync("true", TimeSpan.FromSeconds(1)));
        var deadline = DateTime.UtcNow.AddSeconds(5);
        while (browser.ConsoleErrors.Count < 3 && DateTime.UtcNow < deadline) await Task.Delay(50);

        var errors = browser.ConsoleErrors;
        Assert.Contains(errors, e => e.Contains("something 42"));
        Assert.Contains(errors, e => e.Contains("late"));
        Assert.Contains(errors, e => e.Contains("missing.png"));
        Assert.DoesNotContain(errors, e => e.Contains("fine"));
    }

    [ChromiumFact]
    public async Task Chromium_writes_png_screenshots_of_the_viewport_and_the_full_page()
    {
        await using var browser = await HeadlessChromium.StartAsync(640, 480);
        await browser.NavigateAsync(WritePage("page.html", Page));

        var path = temp.File("shots/viewport.png");
        var png = await browser.ScreenshotAsync(path);
        Assert.Equal(png, File.ReadAllBytes(path));
        Assert.Equal([0x89, (byte)'P', (byte)'N', (byte)'G'], png[..4]);
        Assert.Equal(640, ReadBigEndian(png, 16));
        Assert.Equal(480, ReadBigEndian(png, 20));

        var full = await browser.ScreenshotAsync(temp.File("shots/full.png"), fullPage: true);
        Assert.True(ReadBigEndian(full, 20) > 2000, "the full page is taller than the 2000-pixel spacer");
        Assert.Empty(browser.ConsoleErrors);
    }

    static int ReadBigEndian(byte[] bytes, int offset) => bytes[offset] << 24 | bytes[offset + 1] << 16 | bytes[offset + 2] << 8 | bytes[offset + 3];
}
