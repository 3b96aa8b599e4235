namespace KvmTyped.EndToEnd.Tests;

/// <summary>Compares two files of equal length byte by byte.</summary>
internal static class FileDiff
{
    /// <summary>The offsets at which <paramref name="other"/> differs from <paramref name="original"/>.</summary>
    public static List<long> DifferingOffsets(string original, string other)
    {
        var differing = new List<long>();
        using var a = File.OpenRead(original);
        using var b = File.OpenRead(other);
        Assert.Equal(a.Length, b.Length);
        var ba = new byte[1 << 20];
        var bb = new byte[1 << 20];
        long pos = 0;
        int n;
        while ((n = a.Read(ba)) > 0)
        {
            b.ReadExactly(bb, 0, n);
            if (!ba.AsSpan(0, n).SequenceEqual(bb.AsSpan(0, n)))
            {
                for (var i = 0; i < n; i++)
                {
                    if (ba[i] != bb[i])
                        differing.Add(pos + i);
                }
            }
            pos += n;
        }
        return differing;
    }
}
