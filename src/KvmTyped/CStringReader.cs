using System.Diagnostics.CodeAnalysis;

namespace KvmTyped;

/// <summary>Reads memory (kernel virtual, physical, a process's): fills <paramref name="destination"/> or says why not.</summary>
internal delegate bool TryReadMemory(ulong address, Span<byte> destination, [NotNullWhen(false)] out string? failure);

/// <summary>The one reader of NUL-terminated strings in memory: it reads in pieces that stop at page ends, so a
/// string that ends just before an unreadable page still reads, and its buffer grows with the string, not with the
/// limit. Where a page is readable only in part, it reads on in 64-byte pieces and then byte by byte, so it never
/// needs a byte past the string's NUL. It stops at the top of the address space.</summary>
internal static class CStringReader
{
    private const int Page = 4096;

    /// <summary>The piece read after a whole-page read failed, before falling back to single bytes.</summary>
    private const int NarrowStep = 64;

    /// <summary>The bytes of the string at <paramref name="address"/> (without its NUL), at most
    /// <paramref name="maxLength"/>; false when a read failed first, with the bytes read before it.</summary>
    public static bool TryRead(TryReadMemory read, ulong address, int maxLength, out byte[] bytes, [NotNullWhen(false)] out string? failure)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(maxLength);
        var buffer = new byte[Math.Min(maxLength, 256)];
        var got = 0;
        var piece = new byte[Page];
        var step = Page;
        failure = null;
        while (got < maxLength)
        {
            var at = address + (ulong)got;
            if (got > 0 && at == 0)
                break;
            var n = (int)Math.Min((ulong)Math.Min(maxLength - got, step), Page - (at & (Page - 1)));
            if (!read(at, piece.AsSpan(0, n), out failure))
            {
                // Part of the page may be readable (a segment that ends inside it): read on in smaller pieces,
                // so a string whose NUL lies before the unreadable bytes is still read whole.
                if (n > 1)
                {
                    step = n > NarrowStep ? NarrowStep : 1;
                    continue;
                }
                bytes = buffer[..got];
                return false;
            }
            var nul = piece.AsSpan(0, n).IndexOf((byte)0);
            var take = nul >= 0 ? nul : n;
            if (got + take > buffer.Length)
                Array.Resize(ref buffer, (int)Math.Min(maxLength, Math.Max((long)buffer.Length * 2, got + take)));
            piece.AsSpan(0, take).CopyTo(buffer.AsSpan(got));
            got += take;
            if (nul >= 0)
                break;
        }
        bytes = buffer[..got];
        return true;
    }
}
