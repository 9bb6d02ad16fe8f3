using System.Net.Http.Headers;
using OpenQA.Selenium;
using OpenQA.Selenium.Chrome;

namespace Forewarn.Server.Tests;

/// <summary>
/// The console in a real browser: Debian's chromium, driven through Debian's chromedriver by Selenium
/// (no browser download). An administrator logs in, watches the dashboard's zone change while a drill
/// runs, adds a user on the page whom radtest then authenticates, and finds a wrong password in the log
/// with its reason. A screenshot of the dashboard is kept as the test's artifact.
/// </summary>
[Collection(nameof(Serial))]
public sealed class ConsoleBrowserTests : IDisposable
{
    private const string Password = "correct horse battery";
    private readonly string _data = Path.Combine(Path.GetTempPath(), "forewarn-browser-" + Guid.NewGuid().ToString("N")[..12]);
    private readonly Xunit.Abstractions.ITestOutputHelper _output;

    public ConsoleBrowserTests(Xunit.Abstractions.ITestOutputHelper output) => _output = output;

    public void Dispose()
    {
        try
        {
            Directory.Delete(_data, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    /// <summary>Where screenshots are kept: beside the test binaries, so a CI run can collect them.</summary>
    public static string Artifacts => Directory.CreateDirectory(Path.Combine(AppContext.BaseDirectory, "artifacts")).FullName;

    private static ChromeDriver StartBrowser(string profile)
    {
        var service = ChromeDriverService.CreateDefaultService(Path.GetDirectoryName(Peer.Require("chromedriver"))!, "chromedriver");
        service.SuppressInitialDiagnosticInformation = true;
        service.HideCommandPromptWindow = true;
        var options = new ChromeOptions { BinaryLocation = Peer.Require("chromium") };
        // As root on a machine with no route out: no sandbox, and none of chromium's calls home.
        options.AddArguments("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync", "--window-size=1400,1000", "--user-data-dir=" + profile);
        return new ChromeDriver(service, options, TimeSpan.FromSeconds(60));
    }

    private static IWebElement Until(ChromeDriver driver, Func<ChromeDriver, IWebElement?> find, string what, double seconds = 20)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (true)
        {
            try
            {
                if (find(driver) is { Displayed: true } element)
                    return element;
            }
            catch (Exception e) when (e is NoSuchElementException or StaleElementReferenceException)
            {
            }
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException($"the page did not show {what} within {seconds} s; the page:\n{driver.PageSource[..Math.Min(4000, driver.PageSource.Length)]}");
            Thread.Sleep(100);
        }
    }

    [SkippableFact]
    public async Task Console_InChromium_DashboardFollowsADrill_UserAddedOnThePage_LogShowsTheReason()
    {
        Requires.Program("chromium");
        Requires.Program("chromedriver");
        Requires.Program("radtest");
        await ConsoleTests.AddAdminAsync(_data, "alice", Password);
        await using var server = await ServerProcess.StartAsync(_data, "--set", "Forewarn:Admin:Drills=true");
        var profile = Directory.CreateTempSubdirectory("forewarn-chromium-").FullName;
        using var driver = StartBrowser(profile);
        try
        {
            driver.Navigate().GoToUrl(server.Admin);
            Until(driver, d => d.FindElement(By.Id("login-name")), "the login form").SendKeys("alice");
            driver.FindElement(By.Id("login-password")).SendKeys(Password);
            driver.FindElement(By.Id("login-submit")).Click();
            Until(driver, d => d.FindElement(By.Id("zone")) is { Text: "Accept" } e ? e : null, "the dashboard in Accept");

            // A drill the monitor must see: the dashboard follows the zone out of Accept, live.
            using (var script = new HttpClient { BaseAddress = server.Admin })
            {
                script.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", (await File.ReadAllTextAsync(Path.Combine(_data, "admin.token"))).Trim());
                using var drill = await script.PostAsync("/api/v1/drill?kind=score&seconds=12", null);
                Assert.True(drill.IsSuccessStatusCode, await drill.Content.ReadAsStringAsync());
            }
            var zone = Until(driver, d => d.FindElement(By.Id("zone")) is { Text: "Hold" or "Defer" or "AdmitThenDefer" } e ? e : null, "the zone leaving Accept", 30);
            _output.WriteLine($"dashboard zone during the drill: {zone.Text}");
            // The chart draws the score and the thresholds, and the zone's band.
            Until(driver, d => d.FindElements(By.CssSelector("#chart rect[data-zone='Defer'], #chart rect[data-zone='Hold']")).FirstOrDefault(), "the zone's band on the chart", 10);
            Assert.NotEmpty(driver.FindElements(By.CssSelector("#chart polyline")));
            var screenshot = Path.Combine(Artifacts, "console-dashboard.png");
            ((ITakesScreenshot)driver).GetScreenshot().SaveAsFile(screenshot);
            _output.WriteLine($"screenshot: {screenshot}");
            Assert.True(new FileInfo(screenshot).Length > 10_000);

            // A user added on the page, then authenticated by radtest.
            driver.FindElement(By.CssSelector("#tabs button[data-tab='users']")).Click();
            Until(driver, d => d.FindElement(By.Id("user-name")), "the user form").SendKeys("dave");
            driver.FindElement(By.Id("user-password")).SendKeys("dave's password");
            var methods = driver.FindElement(By.Id("user-methods"));
            methods.Clear();
            methods.SendKeys("pap");
            driver.FindElement(By.Id("user-reply")).SendKeys("Reply-Message=hello dave");
            driver.FindElement(By.Id("user-save")).Click();
            Until(driver, d => d.FindElement(By.Id("user-error")) is { Text: "Saved." } e ? e : null, "the user saved");
            Until(driver, d => d.FindElements(By.CssSelector("#users-table td")).FirstOrDefault(td => td.Text == "dave"), "dave in the users' table");
            Peer.Result? accepted = null;
            for (var deadline = DateTime.UtcNow.AddSeconds(15); DateTime.UtcNow < deadline && accepted is null;)
            {
                var r = await Peer.RunAsync("radtest", ["dave", "dave's password", $"127.0.0.1:{server.AuthPort}", "0", "testing123"]);
                if (r.Output.Contains("Access-Accept", StringComparison.Ordinal))
                    accepted = r;
                else
                    await Task.Delay(200);
            }
            Assert.True(accepted is not null, "radtest never got an Access-Accept for the user added on the page");
            Assert.Contains("hello dave", accepted.Output, StringComparison.Ordinal);

            // A wrong password shows in the live log, with its reason.
            var wrong = await Peer.RunAsync("radtest", ["dave", "not it", $"127.0.0.1:{server.AuthPort}", "0", "testing123"]);
            Assert.Contains("Access-Reject", wrong.Output, StringComparison.Ordinal);
            driver.FindElement(By.CssSelector("#tabs button[data-tab='log']")).Click();
            var row = Until(driver, d => d.FindElements(By.CssSelector("#log-table tr.reject")).FirstOrDefault(r => r.Text.Contains("dave", StringComparison.Ordinal)),
                "dave's reject in the log");
            Assert.Equal("wrong credentials", row.FindElement(By.CssSelector("td.reason")).Text);
            Until(driver, d => d.FindElements(By.CssSelector("#failures td")).FirstOrDefault(td => td.Text == "wrong credentials"), "the failure grouped by reason", 10);
            ((ITakesScreenshot)driver).GetScreenshot().SaveAsFile(Path.Combine(Artifacts, "console-log.png"));
        }
        finally
        {
            driver.Quit();
            try
            {
                Directory.Delete(profile, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }
}
