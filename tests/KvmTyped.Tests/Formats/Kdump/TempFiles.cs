namespace KvmTyped.Tests.Formats.Kdump;

/// <summary>A temporary folder removed at dispose.</summary>
internal sealed class TempFiles : IDisposable
{
    private int _n;

    public TempFiles() => Directory.CreateDirectory(Root);

    public string Root { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "kvmtyped-kdump-" + Guid.NewGuid().ToString("N"));

    public string Write(byte[] bytes, string? name = null)
    {
        var path = System.IO.Path.Combine(Root, name ?? $"f{Interlocked.Increment(ref _n)}.kdump");
        File.WriteAllBytes(path, bytes);
        return path;
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(Root, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
