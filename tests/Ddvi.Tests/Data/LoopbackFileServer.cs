using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;

namespace Ddvi.Tests.Data;

/// <summary>
/// Serves fixed files over HTTP on 127.0.0.1 at a free port (404 for anything else) and records the paths asked for.
/// </summary>
internal sealed class LoopbackFileServer : IDisposable
{
    readonly HttpListener listener;
    readonly IReadOnlyDictionary<string, byte[]> files;
    readonly Task loop;

    public LoopbackFileServer(IReadOnlyDictionary<string, byte[]> files)
    {
        this.files = files;
        listener = StartOnFreePort(out int port);
        BaseUri = new Uri($"http://127.0.0.1:{port}/mnist/");
        loop = Task.Run(Serve);
    }

    public Uri BaseUri { get; }

    /// <summary>File names requested so far, in order.</summary>
    public ConcurrentQueue<string> Requests { get; } = new();

    public void Dispose()
    {
        listener.Stop();
        listener.Close();
        loop.Wait(TimeSpan.FromSeconds(5));
    }

    static HttpListener StartOnFreePort(out int port)
    {
        for (int attempt = 0; ; attempt++)
        {
            using (var probe = new TcpListener(IPAddress.Loopback, 0))
            {
                probe.Start();
                port = ((IPEndPoint)probe.LocalEndpoint).Port;
                probe.Stop();
            }
            var candidate = new HttpListener();
            candidate.Prefixes.Add($"http://127.0.0.1:{port}/");
            try
            {
                candidate.Start();
                return candidate;
            }
            catch (HttpListenerException) when (attempt < 5)
            {
                candidate.Close(); // another process took the port between the probe and the start
            }
        }
    }

    async Task Serve()
    {
        while (listener.IsListening)
        {
            HttpListenerContext context;
            try
            {
                context = await listener.GetContextAsync();
            }
            catch (Exception e) when (e is HttpListenerException or ObjectDisposedException or InvalidOperationException)
            {
                return;
            }
            string name = context.Request.Url!.Segments[^1];
            Requests.Enqueue(name);
            using var response = context.Response;
            if (context.Request.Url.AbsolutePath.StartsWith(BaseUri.AbsolutePath) && files.TryGetValue(name, out var content))
            {
                response.StatusCode = 200;
                response.ContentLength64 = content.Length;
                await response.OutputStream.WriteAsync(content);
            }
            else
            {
                response.StatusCode = 404;
            }
        }
    }
}
