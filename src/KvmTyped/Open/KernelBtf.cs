using System.Runtime.CompilerServices;
using KvmTyped.Btf;

namespace KvmTyped;

/// <summary>The BTF type information of an opened kernel image, with where it came from.</summary>
/// <remarks>Looked for in this order: an explicit BTF file (raw, or an ELF file with a .BTF section); the .BTF
/// section of an ELF namelist (vmlinux); the image's own memory between <c>__start_BTF</c> and <c>__stop_BTF</c>
/// (kernels built with CONFIG_DEBUG_INFO_BTF keep their BTF there). One instance is kept per <see cref="Kvm"/>.</remarks>
public sealed class KernelBtf
{
    /// <summary>The largest BTF read from the image's memory.</summary>
    public const long MaxImageBtfLength = 64L << 20;

    private static readonly ConditionalWeakTable<Kvm, KernelBtf> Cache = new();
    private static readonly Lock CacheLock = new();

    private KernelBtf(BtfTypes types, string source)
    {
        Types = types;
        Source = source;
    }

    /// <summary>The kernel's types.</summary>
    public BtfTypes Types { get; }

    /// <summary>Where the types were read: "file PATH", "namelist .BTF (PATH)" or "image memory (0x…-0x…)".</summary>
    public string Source { get; }

    /// <summary>The kernel BTF of <paramref name="kvm"/>, found once and then kept for that image.</summary>
    /// <param name="kvm">The opened image.</param>
    /// <param name="btfPath">An explicit BTF file, tried first (default: <see cref="Kvm.BtfPath"/>, from
    /// <see cref="KvmOpenOptions.BtfPath"/>); it is only used by the first call for an image.</param>
    /// <exception cref="KvmException">No source has BTF; the message names each one tried and why it failed.</exception>
    public static KernelBtf For(Kvm kvm, string? btfPath = null)
    {
        ArgumentNullException.ThrowIfNull(kvm);
        lock (CacheLock)
        {
            if (Cache.TryGetValue(kvm, out var found))
                return found;
            var btf = Find(kvm, btfPath ?? kvm.BtfPath);
            Cache.AddOrUpdate(kvm, btf);
            return btf;
        }
    }

    /// <summary>Whether BTF was already found for <paramref name="kvm"/>.</summary>
    public static bool TryGetCached(Kvm kvm, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out KernelBtf? btf)
    {
        ArgumentNullException.ThrowIfNull(kvm);
        lock (CacheLock)
            return Cache.TryGetValue(kvm, out btf);
    }

    private static KernelBtf Find(Kvm kvm, string? btfPath)
    {
        var tried = new List<string>();
        if (btfPath is not null)
        {
            // An explicit file is what the user asked for: its failure is the answer, not a reason to look elsewhere.
            try
            {
                return new KernelBtf(BtfReader.Load(btfPath, pointerSize: kvm.PointerSize), $"file {btfPath}");
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new KvmException($"{btfPath}: cannot read BTF: {e.Message}", e);
            }
        }
        if (kvm.Symbols.Kind == "ELF" && File.Exists(kvm.NamelistPath))
        {
            try
            {
                return new KernelBtf(BtfReader.Load(kvm.NamelistPath, pointerSize: kvm.PointerSize), $"namelist .BTF ({kvm.NamelistPath})");
            }
            catch (Exception e) when (e is KvmException or IOException or UnauthorizedAccessException)
            {
                tried.Add($"namelist {kvm.NamelistPath}: {e.Message}");
            }
        }
        else
        {
            tried.Add($"namelist {kvm.NamelistPath} is a {kvm.Symbols.Kind} symbol list, not an ELF vmlinux");
        }
        if (TryFromMemory(kvm, out var fromMemory, out var why))
            return fromMemory;
        tried.Add($"image memory: {why}");
        throw new KvmException($"no BTF for this kernel (give a BTF file with --btf, e.g. from `pahole --btf_encode_detached`): {string.Join("; ", tried)}");
    }

    private static bool TryFromMemory(Kvm kvm, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out KernelBtf? btf, [System.Diagnostics.CodeAnalysis.NotNullWhen(false)] out string? why)
    {
        btf = null;
        if (!kvm.TryGetSymbol("__start_BTF", out var start) || !kvm.TryGetSymbol("__stop_BTF", out var stop))
        {
            why = "the namelist has no __start_BTF/__stop_BTF (kernel built without CONFIG_DEBUG_INFO_BTF)";
            return false;
        }
        if (stop <= start || stop - start > MaxImageBtfLength)
        {
            why = $"__start_BTF 0x{start:x} .. __stop_BTF 0x{stop:x} is not a plausible BTF size (at most {MaxImageBtfLength >> 20} MiB)";
            return false;
        }
        var blob = new byte[stop - start];
        if (!kvm.TryReadVirtual(start, blob, out var failure))
        {
            why = failure;
            return false;
        }
        var name = $"image memory (0x{start:x}-0x{stop:x})";
        try
        {
            btf = new KernelBtf(BtfTypes.Parse(new ReadOnlyMemory<byte>(blob), sourceName: name, pointerSize: kvm.PointerSize), name);
            why = null;
            return true;
        }
        catch (KvmException e)
        {
            why = e.Message;
            return false;
        }
    }
}

/// <summary>Shortcuts on <see cref="Kvm"/> for the Linux helpers.</summary>
public static class KvmLinuxExtensions
{
    /// <summary>The kernel's BTF (see <see cref="KernelBtf.For"/>).</summary>
    public static KernelBtf GetKernelBtf(this Kvm kvm, string? btfPath = null) => KernelBtf.For(kvm, btfPath);
}
