using System.Globalization;
using System.Text;

namespace KvmTyped.Formats;

/// <summary>The kernel's VMCOREINFO: KEY=VALUE lines the kernel exports for dump readers
/// (Linux kernel/crash_core.c; makedumpfile reads the same).</summary>
/// <remarks>Number bases follow the kernel's writers: SYMBOL(x) and KERNELOFFSET are hex without 0x;
/// SIZE, OFFSET, LENGTH are unsigned decimal; NUMBER is signed decimal (phys_base can be negative).</remarks>
internal sealed class VmcoreInfo
{
    /// <summary>Largest VMCOREINFO text accepted (the kernel reserves one page; dumps of big pages, 64 KiB).</summary>
    public const int MaxBytes = 1 << 20;

    private readonly Dictionary<string, string> _entries;

    private VmcoreInfo(Dictionary<string, string> entries) => _entries = entries;

    /// <summary>Every key with its raw value, in no particular order.</summary>
    public IReadOnlyDictionary<string, string> Entries => _entries;

    /// <summary>Parses the note's text. Lines without '=' are ignored; a later duplicate key wins.</summary>
    public static VmcoreInfo Parse(ReadOnlySpan<byte> text)
    {
        var nul = text.IndexOf((byte)0);
        if (nul >= 0)
            text = text[..nul];
        var entries = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var line in Encoding.ASCII.GetString(text).Split('\n'))
        {
            var eq = line.IndexOf('=', StringComparison.Ordinal);
            if (eq <= 0)
                continue;
            entries[line[..eq].Trim()] = line[(eq + 1)..].Trim();
        }
        return new VmcoreInfo(entries);
    }

    /// <summary>The raw value of a key, or null.</summary>
    public string? this[string key] => _entries.TryGetValue(key, out var v) ? v : null;

    /// <summary>OSRELEASE: the kernel release, e.g. "6.1.0-56-amd64".</summary>
    public string? OsRelease => this["OSRELEASE"];

    /// <summary>PAGESIZE in bytes, when given.</summary>
    public int? PageSize => TryDecimal("PAGESIZE", out var v) && v > 0 && v <= int.MaxValue ? (int)v : null;

    /// <summary>SYMBOL(name): the running (relocated) address of a symbol.</summary>
    public ulong? Symbol(string name) => TryHex($"SYMBOL({name})", out var v) ? v : null;

    /// <summary>SIZE(name), unsigned decimal.</summary>
    public ulong? Size(string name) => TryUnsigned($"SIZE({name})", out var v) ? v : null;

    /// <summary>OFFSET(struct.field), unsigned decimal.</summary>
    public ulong? Offset(string structDotField) => TryUnsigned($"OFFSET({structDotField})", out var v) ? v : null;

    /// <summary>LENGTH(name), unsigned decimal.</summary>
    public ulong? Length(string name) => TryUnsigned($"LENGTH({name})", out var v) ? v : null;

    /// <summary>NUMBER(name), signed decimal.</summary>
    public long? Number(string name) => TryDecimal($"NUMBER({name})", out var v) ? v : null;

    /// <summary>KERNELOFFSET: the x86-64 KASLR slide (hex), when given.</summary>
    public ulong? KernelOffset => TryHex("KERNELOFFSET", out var v) ? v : null;

    /// <summary>Whether CONFIG_X86_PAE=y is recorded (i386 PAE kernels).</summary>
    public bool IsPae => this["CONFIG_X86_PAE"] == "y";

    private bool TryHex(string key, out ulong value)
    {
        value = 0;
        var s = this[key];
        if (s is null)
            return false;
        if (s.StartsWith("0x", StringComparison.OrdinalIgnoreCase))
            s = s[2..];
        return ulong.TryParse(s, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out value);
    }

    private bool TryUnsigned(string key, out ulong value)
    {
        value = 0;
        var s = this[key];
        return s is not null && ulong.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out value);
    }

    private bool TryDecimal(string key, out long value)
    {
        value = 0;
        var s = this[key];
        return s is not null && long.TryParse(s, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out value);
    }
}
