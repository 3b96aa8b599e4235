namespace KvmTyped.Formats.Compression;

/// <summary>A decompressor for the LZO1X stream format (what liblzo2's lzo1x_1_compress, lzop and
/// makedumpfile -l write), with every input and output access bounds-checked.</summary>
/// <remarks>
/// The format, as the LZO library documents it through its decoder: a stream of instructions, each a
/// literal run or a back-reference ("match"). An instruction byte below 16 means a literal run when no
/// literals trail the previous match (state 0), else a short match; 16–31 a match of distance up to
/// 48 KiB (distance 16384 exactly ends the stream), 32–63 a match of distance up to 16 KiB, 64–255 a short
/// match of distance up to 2 KiB. The low two bits of a match's last distance byte give 0–3 literals that
/// follow it. A zero length field is extended by following bytes (each zero byte adds 255).
/// </remarks>
internal static class Lzo1x
{
    /// <summary>Decompresses <paramref name="source"/> into <paramref name="destination"/>.</summary>
    /// <returns>The number of bytes written.</returns>
    /// <exception cref="InvalidDataException">The stream is damaged: it reads or writes out of bounds,
    /// refers before the start of the output, or has no end marker.</exception>
    public static int Decompress(ReadOnlySpan<byte> source, Span<byte> destination)
    {
        if (!TryDecompress(source, destination, out var written, out var error))
            throw new InvalidDataException(error);
        return written;
    }

    /// <summary>Decompresses <paramref name="source"/> into <paramref name="destination"/>, or says why not.</summary>
    /// <param name="source">The compressed stream.</param>
    /// <param name="destination">Where the output goes; its length bounds the output.</param>
    /// <param name="written">Bytes written to <paramref name="destination"/>.</param>
    /// <param name="error">Why the stream was refused, when the result is false.</param>
    public static bool TryDecompress(ReadOnlySpan<byte> source, Span<byte> destination, out int written, out string? error)
    {
        int ip = 0, op = 0;
        written = 0;
        error = null;
        int state; // literals that trailed the last instruction: 0, 1–3, or 4 after a literal run
        int length;
        int distance;

        if (source.Length == 0)
            return Fail(ip, "empty input", out error);

        if (source[0] > 17)
        {
            length = source[0] - 17;
            ip = 1;
            if (!CopyLiterals(source, ref ip, destination, ref op, length, out error))
                return false;
            state = length < 4 ? length : 4;
        }
        else
        {
            state = 0;
        }

        while (true)
        {
            if (ip >= source.Length)
                return Fail(ip, "input ends without the end-of-stream marker", out error);
            int t = source[ip++];
            int trailing;
            if (t < 16)
            {
                if (state == 0)
                {
                    length = t;
                    if (length == 0 && !ReadExtendedLength(source, ref ip, 15, out length, out error))
                        return false;
                    length += 3;
                    if (!CopyLiterals(source, ref ip, destination, ref op, length, out error))
                        return false;
                    state = 4;
                    continue;
                }
                if (ip >= source.Length)
                    return Fail(ip, "input ends inside a match", out error);
                trailing = t & 3;
                if (state == 4)
                {
                    distance = 1 + 0x800 + (t >> 2) + (source[ip++] << 2);
                    length = 3;
                }
                else
                {
                    distance = 1 + (t >> 2) + (source[ip++] << 2);
                    length = 2;
                }
            }
            else if (t >= 64)
            {
                if (ip >= source.Length)
                    return Fail(ip, "input ends inside a match", out error);
                trailing = t & 3;
                distance = 1 + ((t >> 2) & 7) + (source[ip++] << 3);
                length = (t >> 5) + 1;
            }
            else if (t >= 32)
            {
                length = t & 31;
                if (length == 0 && !ReadExtendedLength(source, ref ip, 31, out length, out error))
                    return false;
                length += 2;
                if (source.Length - ip < 2)
                    return Fail(ip, "input ends inside a match", out error);
                int d = source[ip] | (source[ip + 1] << 8);
                ip += 2;
                trailing = d & 3;
                distance = 1 + (d >> 2);
            }
            else
            {
                length = t & 7;
                if (length == 0 && !ReadExtendedLength(source, ref ip, 7, out length, out error))
                    return false;
                length += 2;
                if (source.Length - ip < 2)
                    return Fail(ip, "input ends inside a match", out error);
                int d = source[ip] | (source[ip + 1] << 8);
                ip += 2;
                trailing = d & 3;
                distance = ((t & 8) << 11) + (d >> 2);
                if (distance == 0)
                {
                    if (ip != source.Length)
                        return Fail(ip, $"{source.Length - ip} bytes follow the end-of-stream marker", out error);
                    written = op;
                    return true;
                }
                distance += 0x4000;
            }

            if (distance > op)
                return Fail(ip, $"match refers {distance} bytes back but only {op} bytes are decoded", out error);
            if (length > destination.Length - op)
                return Fail(ip, $"output exceeds {destination.Length} bytes", out error);
            int from = op - distance;
            if (distance >= length)
            {
                destination.Slice(from, length).CopyTo(destination.Slice(op, length));
                op += length;
            }
            else
            {
                for (int i = 0; i < length; i++)
                    destination[op++] = destination[from + i];
            }

            state = trailing;
            if (trailing > 0 && !CopyLiterals(source, ref ip, destination, ref op, trailing, out error))
                return false;
        }
    }

    private static bool ReadExtendedLength(ReadOnlySpan<byte> source, ref int ip, int baseLength, out int length, out string? error)
    {
        length = 0;
        int zeros = 0;
        while (ip < source.Length && source[ip] == 0)
        {
            zeros++;
            ip++;
        }
        if (ip >= source.Length)
            return Fail(ip, "input ends inside a length", out error);
        // zeros < source.Length <= int.MaxValue, so zeros * 255 stays below 2^39: compute in long.
        long total = (long)zeros * 255 + baseLength + source[ip++];
        if (total > int.MaxValue / 2)
            return Fail(ip, "length field is absurd", out error);
        length = (int)total;
        error = null;
        return true;
    }

    private static bool CopyLiterals(ReadOnlySpan<byte> source, ref int ip, Span<byte> destination, ref int op, int count, out string? error)
    {
        if (count > source.Length - ip)
            return Fail(ip, $"literal run of {count} bytes passes the end of the input", out error);
        if (count > destination.Length - op)
            return Fail(ip, $"output exceeds {destination.Length} bytes", out error);
        source.Slice(ip, count).CopyTo(destination.Slice(op, count));
        ip += count;
        op += count;
        error = null;
        return true;
    }

    private static bool Fail(int ip, string what, out string? error)
    {
        error = $"LZO1X stream damaged at input byte {ip}: {what}";
        return false;
    }
}
