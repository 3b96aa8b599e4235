using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using System.Text;
using KvmTyped.IO;

namespace KvmTyped.Formats;

/// <summary>A Linux swap area (mkswap's format): the signature "SWAPSPACE2" ends the first page.</summary>
/// <remarks>The header is checked at open. A swapped-out page's swap entry names its page index in the area (page 0
/// is the header); <see cref="TryRead"/> reads it. The area's size is the header's last_page + 1 (version 1 header,
/// little-endian as x86 writes it), bounded by the file's length. The header carries no word size, so a swap area
/// agrees with either data model.</remarks>
internal sealed class SwapFile : IDisposable
{
    private static readonly byte[] Signature = Encoding.ASCII.GetBytes("SWAPSPACE2");
    private static readonly byte[] OldSignature = Encoding.ASCII.GetBytes("SWAP-SPACE");

    private readonly RandomAccessFile _file;

    private SwapFile(RandomAccessFile file, int pageSize, ulong pages)
    {
        _file = file;
        PageSize = pageSize;
        Pages = pages;
    }

    public int PageSize { get; }

    /// <summary>Pages in the area, the header page included.</summary>
    public ulong Pages { get; }

    public string Path => _file.Path;

    public static SwapFile Open(string path)
    {
        var file = RandomAccessFile.Open(path, writable: false);
        try
        {
            foreach (var pageSize in new[] { 4096, 8192, 16384, 65536 })
            {
                if (file.Length < pageSize)
                    break;
                var tail = file.Unchecked(pageSize - 10, 10);
                if (tail.SequenceEqual(Signature) || tail.SequenceEqual(OldSignature))
                    return new SwapFile(file, pageSize, AreaPages(file, pageSize, tail.SequenceEqual(Signature)));
            }
            throw new KvmFormatException(path, null, "not a Linux swap area (no SWAPSPACE2 signature at the end of the first page)");
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    private static ulong AreaPages(RandomAccessFile file, int pageSize, bool version2)
    {
        var inFile = (ulong)file.Length / (ulong)pageSize;
        if (!version2)
            return inFile;
        // union swap_header: 1024 boot bytes, then version and last_page (the last usable page's index).
        var info = file.Unchecked(1024, 8);
        var version = BinaryPrimitives.ReadUInt32LittleEndian(info);
        var lastPage = BinaryPrimitives.ReadUInt32LittleEndian(info[4..]);
        return version == 1 && lastPage > 0 ? Math.Min(inFile, (ulong)lastPage + 1) : inFile;
    }

    /// <summary>Reads bytes of page <paramref name="page"/> of the area from <paramref name="offsetInPage"/> on.</summary>
    /// <returns>False, with the reason, for the header page, a page past the area, a range past the page, or a closed file.</returns>
    public bool TryRead(ulong page, int offsetInPage, Span<byte> destination, [NotNullWhen(false)] out string? failure)
    {
        if (page == 0)
        {
            failure = $"swap offset 0 is the header of the swap area {Path}, not a page";
            return false;
        }
        if (page >= Pages)
        {
            failure = $"swap offset 0x{page:x} is past the end of the swap area {Path} ({Pages} pages)";
            return false;
        }
        if (offsetInPage < 0 || offsetInPage + (long)destination.Length > PageSize)
        {
            failure = $"a read of {destination.Length} bytes at {offsetInPage} runs past a {PageSize}-byte page of {Path}";
            return false;
        }
        var at = (long)(page * (ulong)PageSize) + offsetInPage;
        if (at + destination.Length > _file.Length)
        {
            failure = $"swap offset 0x{page:x} is past the end of {Path} ({_file.Length} bytes)";
            return false;
        }
        if (!_file.TryCopy(at, destination))
        {
            failure = $"{Path} is closed";
            return false;
        }
        failure = null;
        return true;
    }

    public void Dispose() => _file.Dispose();
}
