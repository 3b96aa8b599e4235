using System.Text;
using KvmTyped.IO;

namespace KvmTyped.Physical;

/// <summary>A Linux swap area (mkswap's format): the signature "SWAPSPACE2" ends the first page.</summary>
/// <remarks>Only the header is checked at open; reading swapped-out user pages comes with per-process
/// address spaces. The header carries no word size, so a swap area agrees with either data model.</remarks>
internal sealed class SwapFile : IDisposable
{
    private static readonly byte[] Signature = Encoding.ASCII.GetBytes("SWAPSPACE2");
    private static readonly byte[] OldSignature = Encoding.ASCII.GetBytes("SWAP-SPACE");

    private readonly MappedFile _file;

    private SwapFile(MappedFile file, int pageSize)
    {
        _file = file;
        PageSize = pageSize;
    }

    public int PageSize { get; }

    public string Path => _file.Path;

    public static SwapFile Open(string path)
    {
        var file = MappedFile.Open(path, writable: false);
        try
        {
            foreach (var pageSize in new[] { 4096, 8192, 16384, 65536 })
            {
                if (file.Length < pageSize)
                    break;
                var tail = file.Unchecked(pageSize - 10, 10);
                if (tail.SequenceEqual(Signature) || tail.SequenceEqual(OldSignature))
                    return new SwapFile(file, pageSize);
            }
            throw new KvmFormatException(path, null, "not a Linux swap area (no SWAPSPACE2 signature at the end of the first page)");
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    public void Dispose() => _file.Dispose();
}
