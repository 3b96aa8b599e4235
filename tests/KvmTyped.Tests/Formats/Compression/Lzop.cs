using System.Buffers.Binary;
using System.Diagnostics;

namespace KvmTyped.Tests.Formats.Compression;

/// <summary>Runs the real lzop binary and splits its output (lzop's file format: magic, header, then blocks of
/// big-endian uncompressed size, compressed size, checksums, data) into LZO1X blocks.</summary>
internal static class Lzop
{
    public static bool Available { get; } = Probe();

    private static bool Probe()
    {
        try
        {
            using var p = Process.Start(new ProcessStartInfo("lzop", "--version") { RedirectStandardOutput = true, RedirectStandardError = true })!;
            p.StandardOutput.ReadToEnd();
            p.StandardError.ReadToEnd();
            p.WaitForExit();
            return p.ExitCode == 0;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return false;
        }
    }

    /// <summary>Compresses <paramref name="data"/> with `lzop -c -LEVEL`.</summary>
    public static byte[] Run(byte[] data, int level)
    {
        var psi = new ProcessStartInfo("lzop", $"-c -{level}") { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true };
        using var p = Process.Start(psi)!;
        var output = new MemoryStream();
        var copy = p.StandardOutput.BaseStream.CopyToAsync(output);
        var err = p.StandardError.ReadToEndAsync();
        p.StandardInput.BaseStream.Write(data);
        p.StandardInput.Close();
        copy.Wait();
        p.WaitForExit();
        Assert.True(p.ExitCode == 0, "lzop failed: " + err.Result);
        return output.ToArray();
    }

    public readonly record struct Block(int UncompressedSize, byte[] Data, bool Stored);

    /// <summary>The blocks of an lzop file.</summary>
    public static List<Block> Blocks(byte[] file)
    {
        ReadOnlySpan<byte> magic = [0x89, 0x4c, 0x5a, 0x4f, 0x00, 0x0d, 0x0a, 0x1a, 0x0a];
        Assert.True(file.AsSpan(0, 9).SequenceEqual(magic), "not an lzop file");
        int at = 9;
        int version = BinaryPrimitives.ReadUInt16BigEndian(file.AsSpan(at));
        at += 4; // version, lib version
        if (version >= 0x0940)
            at += 2; // version needed
        int method = file[at++];
        Assert.InRange(method, 1, 3); // M_LZO1X_1, M_LZO1X_1_15, M_LZO1X_999
        if (version >= 0x0940)
            at++; // level
        uint flags = BinaryPrimitives.ReadUInt32BigEndian(file.AsSpan(at));
        at += 4;
        if ((flags & 0x800) != 0)
            at += 4; // filter
        at += 8; // mode, mtime low
        if (version >= 0x0940)
            at += 4; // mtime high
        at += 1 + file[at]; // name
        at += 4; // header checksum
        if ((flags & 0x40) != 0)
        {
            int extra = (int)BinaryPrimitives.ReadUInt32BigEndian(file.AsSpan(at));
            at += 4 + extra + 4;
        }
        var blocks = new List<Block>();
        while (true)
        {
            int dst = (int)BinaryPrimitives.ReadUInt32BigEndian(file.AsSpan(at));
            at += 4;
            if (dst == 0)
                break;
            int src = (int)BinaryPrimitives.ReadUInt32BigEndian(file.AsSpan(at));
            at += 4;
            if ((flags & 0x1) != 0) at += 4;
            if ((flags & 0x100) != 0) at += 4;
            if (src < dst)
            {
                if ((flags & 0x2) != 0) at += 4;
                if ((flags & 0x200) != 0) at += 4;
            }
            blocks.Add(new Block(dst, file.AsSpan(at, src).ToArray(), src == dst));
            at += src;
        }
        return blocks;
    }

    /// <summary>One page compressed by lzop, or null when lzop stored it uncompressed (no gain).</summary>
    public static byte[]? CompressPage(byte[] page, int level = 3)
    {
        var blocks = Blocks(Run(page, level));
        Assert.Single(blocks);
        return blocks[0].Stored ? null : blocks[0].Data;
    }
}
