using System.CommandLine;
using System.Globalization;
using System.Text;

namespace KvmTyped.Cli;

/// <summary>`rd ADDRESS|SYMBOL[+OFF] [-l LEN] [--phys] [-s]`: hex dump or string.</summary>
internal static class RdCommand
{
    public static Command Build(CommonOptions common, TextWriter stdout, TextWriter stderr)
    {
        var where = new Argument<string>("address") { Description = "ADDRESS, SYMBOL or SYMBOL+OFF (hex address; offset hex with 0x, else decimal)" };
        var length = new Option<int?>("--length", "-l") { Description = "bytes to read, 1 or more (default 64, or four words with -w; with -s, the longest string, default 4096)" };
        var phys = new Option<bool>("--phys") { Description = "ADDRESS is a physical address" };
        var str = new Option<bool>("--string") { Description = "print a NUL-terminated string" };
        var word = new Option<int>("--width", "-w") { Description = "print words of 1, 2, 4 or 8 bytes (little-endian) instead of a hex dump" };
        str.Aliases.Add("-s");
        var cmd = new Command("rd", "read memory: hex dump, or a string with -s/--string") { where, length, phys, str, word };
        // `-s` means string for rd (as in crash); the swap file stays reachable as --swap.
        cmd.SetAction(r =>
        {
            // Usage errors before the image is opened: they need no dump to be found.
            var given = r.GetValue(length);
            var w = r.GetValue(word);
            if (given is < 1)
            {
                stderr.WriteLine($"kvmtyped: -l {given.Value.ToString(CultureInfo.InvariantCulture)}: the length is a number of bytes, 1 or more");
                return CommandLine.Usage;
            }
            if (w is not (0 or 1 or 2 or 4 or 8))
            {
                stderr.WriteLine("kvmtyped: -w takes 1, 2, 4 or 8");
                return CommandLine.Usage;
            }
            if (w > 0 && !r.GetValue(str) && given is int l && l % w != 0)
            {
                stderr.WriteLine($"kvmtyped: -l {l.ToString(CultureInfo.InvariantCulture)} is not a whole number of {w.ToString(CultureInfo.InvariantCulture)}-byte words");
                return CommandLine.Usage;
            }
            using var kvm = common.Open(r, stderr);
            if (kvm is null)
                return CommandLine.Failure;
            var isPhys = r.GetValue(phys);
            if (!Output.TryResolve(kvm, r.GetValue(where)!, isPhys, out var address, out var err))
            {
                stderr.WriteLine($"kvmtyped: {err}");
                return CommandLine.Failure;
            }
            var len = given ?? -1;
            try
            {
                if (r.GetValue(str))
                {
                    var max = len < 0 ? 4096 : len;
                    if (max > 1 << 26)
                    {
                        stderr.WriteLine("kvmtyped: length too large (at most 64 MiB)");
                        return CommandLine.Usage;
                    }
                    var s = isPhys ? kvm.ReadPhysicalCString(address, max) : kvm.ReadCString(address, max);
                    if (r.GetValue(common.Json))
                        stdout.WriteLine(Output.Json(w => { w.WriteStartObject(); w.WriteString("address", Output.Hex(address)); w.WriteString("string", s); w.WriteEndObject(); }));
                    else
                        stdout.WriteLine(s.TrimEnd('\n'));
                    return 0;
                }
                if (len < 0)
                    len = w == 0 ? 64 : w * 4;
                if (len > 1 << 26)
                {
                    stderr.WriteLine("kvmtyped: length too large (at most 64 MiB)");
                    return CommandLine.Usage;
                }
                var buf = new byte[len];
                if (isPhys)
                    kvm.ReadPhysical(address, buf);
                else
                    kvm.ReadVirtual(address, buf);
                if (r.GetValue(common.Json))
                    stdout.WriteLine(Output.Json(j => { j.WriteStartObject(); j.WriteString("address", Output.Hex(address)); j.WriteString("hex", Convert.ToHexStringLower(buf)); j.WriteEndObject(); }));
                else if (w > 0)
                    Words(stdout, address, buf, w, kvm.PointerSize * 2);
                else
                    HexDump(stdout, address, buf, kvm.PointerSize * 2);
                return 0;
            }
            catch (KvmException e)
            {
                stderr.WriteLine($"kvmtyped: {e.Message}");
                return CommandLine.Failure;
            }
        });
        return cmd;
    }

    /// <summary>crash-style words: an address, then up to 16 bytes' worth of words per line.</summary>
    internal static void Words(TextWriter o, ulong address, ReadOnlySpan<byte> data, int width, int addressWidth)
    {
        var sb = new StringBuilder();
        var format = "x" + (width * 2).ToString(CultureInfo.InvariantCulture);
        for (var i = 0; i < data.Length; i += 16)
        {
            sb.Clear();
            sb.Append((address + (ulong)i).ToString("x" + addressWidth, CultureInfo.InvariantCulture)).Append(':');
            for (var j = i; j + width <= data.Length && j < i + 16; j += width)
            {
                var span = data.Slice(j, width);
                ulong v = width switch
                {
                    1 => span[0],
                    2 => System.Buffers.Binary.BinaryPrimitives.ReadUInt16LittleEndian(span),
                    4 => System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(span),
                    _ => System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(span),
                };
                sb.Append("  ").Append(v.ToString(format, CultureInfo.InvariantCulture));
            }
            o.WriteLine(sb.ToString());
        }
    }

    internal static void HexDump(TextWriter o, ulong address, ReadOnlySpan<byte> data, int width)
    {
        var sb = new StringBuilder();
        for (var i = 0; i < data.Length; i += 16)
        {
            sb.Clear();
            sb.Append((address + (ulong)i).ToString("x" + width, CultureInfo.InvariantCulture)).Append(": ");
            for (var j = 0; j < 16; j++)
            {
                if (j == 8)
                    sb.Append(' ');
                sb.Append(i + j < data.Length ? " " + data[i + j].ToString("x2", CultureInfo.InvariantCulture) : "   ");
            }
            sb.Append("  ");
            for (var j = 0; j < 16 && i + j < data.Length; j++)
            {
                var c = data[i + j];
                sb.Append(c is >= 0x20 and < 0x7f ? (char)c : '.');
            }
            o.WriteLine(sb.ToString());
        }
    }
}
