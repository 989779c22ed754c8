using System.Text.RegularExpressions;
using Naani.Tests.Cli;
using Naani.Tests.Serialization;

namespace Naani.Tests.Browser;

/// Runs where both chromium and Debian's Fashion-MNIST are installed (.ci/run installs both).
public sealed class ChromiumFashionMnistFactAttribute : FactAttribute
{
    public ChromiumFashionMnistFactAttribute()
    {
        if (new ChromiumFactAttribute().Skip is { } browser) Skip = browser;
        else if (new Data.FashionMnistFactAttribute().Skip is { } data) Skip = data;
    }
}

/// naani train --dashboard, watched in headless Chromium while a real run trains on Fashion-MNIST, then its report.html.
[Trait("Category", "RealData")]
public sealed partial class DashboardBrowserTests : IDisposable
{
    readonly TempDirectory temp = new();

    public void Dispose() => temp.Dispose();

    /// Screenshots go beside the test output (bin/.../browser-screenshots), for a person to look at.
    static string Screenshot(string name)
    {
        var folder = Path.Combine(AppContext.BaseDirectory, "browser-screenshots");
        Directory.CreateDirectory(folder);
        return Path.Combine(folder, name);
    }

    [GeneratedRegex(@"Dashboard: (http://127\.0\.0\.1:\d+/)")]
    private static partial Regex DashboardUrl();

    static async Task<int> Number(HeadlessChromium browser, string expression) => (await browser.EvaluateAsync(expression)).GetInt32();

    [ChromiumFashionMnistFact]
    public async Task The_live_dashboard_gains_points_while_training_runs_and_the_report_keeps_its_final_state()
    {
        string run = temp.File("run");
        // 30,000 training images on one thread: a few seconds an epoch, long enough to watch.
        var child = CliRunner.Start(["train", "-m", "mnist-baseline", "-d", "fashion-mnist", "-e", "2", "-b", "32", "-t", "1",
            "--validation-split", "0.5", "--dashboard", "--port", "0", "-o", run]);
        try
        {
            string? url = null;
            for (int i = 0; i < 600 && url is null && !child.Process.HasExited; i++)
            {
                if (DashboardUrl().Match(child.Output()) is { Success: true } m) url = m.Groups[1].Value;
                else await Task.Delay(100);
            }
            Assert.True(url is not null, $"naani train did not print the dashboard's address:\n{child.Output()}");

            await using (var browser = await HeadlessChromium.StartAsync(1280, 1000))
            {
                await browser.NavigateAsync(url);
                Assert.True(await browser.WaitForAsync("window.naaniDashboard && window.naaniDashboard.batches() > 0", TimeSpan.FromSeconds(60)),
                    $"The page got no batch:\n{child.Output()}");
                int before = await Number(browser, "window.naaniDashboard.batches()");
                Assert.True(await browser.WaitForAsync($"window.naaniDashboard.batches() > {before} + 20", TimeSpan.FromSeconds(60)),
                    "The curves gained no points while training ran.");
                Assert.True(await browser.WaitForAsync("document.querySelector('#status').textContent === 'training'", TimeSpan.FromSeconds(5)));
                Assert.True(await browser.WaitForAsync("[...document.querySelectorAll('#figures span')].some(s => s.dataset.key === 'ETA')", TimeSpan.FromSeconds(5)));
                Assert.True(await browser.NonBlankPixelsAsync("#loss-chart") > 500, "the loss chart is blank");
                Assert.True(await browser.NonBlankPixelsAsync("#accuracy-chart") > 500, "the accuracy chart is blank");
                await browser.ScreenshotAsync(Screenshot("dashboard-live.png"));

                // The first epoch's end brings the confusion matrix and the predictions for the validation images.
                Assert.True(await browser.WaitForAsync("window.naaniDashboard.epochs() >= 1", TimeSpan.FromSeconds(120)), "no epoch ended");
                Assert.True(await browser.WaitForAsync("window.naaniDashboard.drawn.confusion > 0 && window.naaniDashboard.drawn.grid > 0", TimeSpan.FromSeconds(10)));
                Assert.True(await browser.NonBlankPixelsAsync("#confusion") > 1000, "the confusion matrix is blank");
                Assert.Equal(24, await Number(browser, "document.querySelectorAll('#grid figure').length"));
                Assert.Equal(24, await Number(browser, "document.querySelectorAll('#grid figure.right, #grid figure.wrong').length"));
                Assert.True(await Number(browser, "document.querySelectorAll('#grid figure.right').length") >= 12, "fewer than half the grid right after an epoch");
                Assert.True(await Number(browser, "document.querySelectorAll('#epochs tr').length") >= 2);
                await browser.ScreenshotAsync(Screenshot("dashboard-epoch.png"), fullPage: true);

                // The run ends: the page gets "end" and says finished.
                Assert.True(await browser.WaitForAsync("document.querySelector('#status').textContent === 'finished'", TimeSpan.FromSeconds(180)),
                    $"The page never said finished:\n{child.Output()}");
                Assert.Equal(2 * 938, await Number(browser, "window.naaniDashboard.batches()"));
                Assert.Empty(browser.ConsoleErrors);
            }
            child.WaitForExit(out _);

            // report.html: the same page with the final state inside it, from file://, with the report's tables below.
            await using (var browser = await HeadlessChromium.StartAsync(1280, 1000))
            {
                await browser.NavigateAsync(new Uri(Path.Combine(run, "report.html")).AbsoluteUri);
                Assert.Equal(2 * 938, await Number(browser, "window.naaniDashboard.batches()"));
                Assert.Equal(2, await Number(browser, "window.naaniDashboard.epochs()"));
                Assert.Equal("finished", (await browser.EvaluateAsync("document.querySelector('#status').textContent")).GetString());
                Assert.True(await browser.NonBlankPixelsAsync("#loss-chart") > 500);
                Assert.True(await browser.NonBlankPixelsAsync("#confusion") > 1000);
                Assert.True(await Number(browser, "[...document.querySelectorAll('h2')].filter(h => h.textContent.startsWith('Test: fashion-mnist')).length") == 1,
                    "the report's test evaluation is missing from report.html");
                // The confusion matrix slider goes back to the first epoch.
                await browser.EvaluateAsync("(() => { const s = document.querySelector('#confusion-epoch'); s.value = 1; s.dispatchEvent(new Event('input')); })()");
                Assert.StartsWith("1 (", (await browser.EvaluateAsync("document.querySelector('#confusion-epoch-value').textContent")).GetString());
                await browser.ScreenshotAsync(Screenshot("dashboard-report.png"), fullPage: true);
                Assert.Empty(browser.ConsoleErrors);
            }
        }
        finally
        {
            if (!child.Process.HasExited) child.Process.Kill(entireProcessTree: true);
        }
    }
}
