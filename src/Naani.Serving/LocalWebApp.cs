using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Naani.Serving;

/// A small Kestrel app for pages a person opens on their own machine (naani explain --serve, naani train --dashboard):
/// one address, no logging, and a port in use refused with a message that names it.
public static class LocalWebApp
{
    /// Builds the app, lets map add its endpoints, starts it on address:port (0: any free port) and returns it with
    /// its URL (ending in "/"). A port that cannot be bound throws an IOException naming it and --port.
    public static async Task<(WebApplication App, string Url)> StartAsync(IPAddress address, int port, Action<WebApplication> map)
    {
        ArgumentNullException.ThrowIfNull(address);
        ArgumentNullException.ThrowIfNull(map);
        if (port is < 0 or > 65535) throw new ArgumentOutOfRangeException(nameof(port), $"A port is 0 to 65535; got {port}.");
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            kestrel.Listen(address, port);
        });
        var app = builder.Build();
        map(app);
        try
        {
            await app.StartAsync();
        }
        catch (IOException e)
        {
            await app.DisposeAsync();
            throw new IOException($"Cannot listen on {address}:{port}: {e.Message} Choose another --port (0: any free one).", e);
        }
        var bound = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        return (app, bound.TrimEnd('/') + "/");
    }
}
