using System.Globalization;
using System.Text.Json;
using KvmTyped.TestSupport;

namespace KvmTyped.EndToEnd.Tests;

/// <summary>A fixture dump with its namelists and the ground truth recorded inside the guest (truth.json).</summary>
internal sealed class Truth
{
    private readonly JsonElement _root;

    private Truth(string folder, JsonElement root)
    {
        Folder = folder;
        _root = root;
    }

    public string Folder { get; }

    public static Truth Load(string folder)
    {
        var path = Path.Combine(Fixtures.Root, folder, "truth.json");
        using var doc = JsonDocument.Parse(File.ReadAllText(path));
        return new Truth(folder, doc.RootElement.Clone());
    }

    public string LinuxBanner => _root.GetProperty("linux_banner").GetString()!.TrimEnd('\n');

    /// <summary>uname -r, the third word of uname -a.</summary>
    public string Release => _root.GetProperty("uname_a").GetString()!.Split(' ')[2];

    public ulong KaslrOffset => Hex(_root.GetProperty("kaslr_offset").GetString()!);

    /// <summary>kernel_symbols_runtime entries whose value is a plain hex address.</summary>
    public IEnumerable<(string Name, ulong Address)> RuntimeSymbols()
    {
        foreach (var p in _root.GetProperty("kernel_symbols_runtime").EnumerateObject())
        {
            if (p.Value.ValueKind == JsonValueKind.String && p.Value.GetString() is { } s && s.StartsWith("0x", StringComparison.Ordinal) && !s.Contains(' ', StringComparison.Ordinal))
                yield return (p.Name, Hex(s));
        }
    }

    public static ulong Hex(string s) => ulong.Parse(s.AsSpan(s.StartsWith("0x", StringComparison.Ordinal) ? 2 : 0), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture);
}

internal static class Dumps
{
    public const string Amd64Map = "amd64/System.map-6.1.0-56-amd64";
    public const string Amd64Vmlinux = "amd64/vmlinux-6.1.0-56-amd64.gz";
    public const string I386Map = "i386/System.map-6.1.0-50-686-pae";
    public const string I386Vmlinux = "i386/vmlinux-6.1.0-50-686-pae.gz";
    public const string NoKaslrElf = "amd64/nokaslr/dump.elf.gz";
    public const string Amd64KdumpElf = "amd64/kdump-kaslr/vmcore.mdf-d31.elf.gz";
    public const string I386KdumpElf = "i386/pae-kdump-kaslr/vmcore.mdf-d31.elf.gz";
    public const string Amd64Kdump = "amd64/kdump-kaslr/vmcore.mdf-lzo-d31.kdump";
    public const string I386Kdump = "i386/pae-kdump-kaslr/vmcore.mdf-zlib-d31.kdump";
    public const string Arm64Map = "arm64/System.map-6.1.0-50-arm64";
    public const string Arm64Kdump = "arm64/dump.kdump-zlib";
}
