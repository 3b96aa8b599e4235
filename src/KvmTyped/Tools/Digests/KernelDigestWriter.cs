using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using KvmTyped.Btf;

namespace KvmTyped.Tools;

/// <summary>Writes the digest of a kernel's BTF that the source generator checks declarations against: every named
/// struct and union with its size and members (anonymous members flattened in), typedefs of anonymous structs and
/// unions, and named enums. The format is described on the generator's <c>KernelDigest</c>; this writer and that
/// reader are its only two ends. Shared by the build task and <c>kvmtyped schema check</c>.</summary>
internal static class KernelDigestWriter
{
    /// <summary>The first line of a digest; must equal the generator's <c>KernelDigest.Magic</c>.</summary>
    public const string Magic = "kvmtyped-kernel-digest 1";

    /// <summary>Deepest type descriptor written (pointers to pointers, arrays of arrays); deeper is written <c>?</c>.</summary>
    private const int MaxDescriptorDepth = 16;

    /// <summary>The digest text of <paramref name="btf"/>.</summary>
    /// <param name="btf">The kernel's types.</param>
    /// <param name="blob">The BTF bytes (hashed into the header, which is what the generator's caching compares).</param>
    /// <param name="release">The kernel's release, as messages name it.</param>
    /// <param name="machine">The kernel's machine; null or "unknown" to infer it from the types.</param>
    /// <param name="source">The kernel file, for the header.</param>
    /// <param name="stamp">What the build task compares for its up-to-date check; null for none.</param>
    /// <exception cref="KvmFormatException">The BTF is damaged, or its pointer size cannot be known.</exception>
    public static string Write(BtfTypes btf, ReadOnlySpan<byte> blob, string release, string? machine, string source, string? stamp)
    {
        ArgumentNullException.ThrowIfNull(btf);
        var arch = machine is null || machine == "unknown" ? InferMachine(btf) : machine;
        var pointer = btf.PointerSize ?? arch switch
        {
            "x86_64" or "aarch64" or "ppc64" or "s390" or "riscv" or "loongarch" => 8,
            "i386" or "arm" or "ppc" => 4,
            _ => throw new KvmFormatException(btf.SourceName, null, "the BTF names no 'long' and the machine is unknown, so its pointer size is not known"),
        };
        var sb = new StringBuilder(4 << 20);
        sb.Append(Magic).Append('\n');
        sb.Append("release ").Append(KernelFile.OneLine(release)).Append('\n');
        sb.Append("machine ").Append(arch).Append('\n');
        sb.Append("pointer ").Append(pointer.ToString(CultureInfo.InvariantCulture)).Append('\n');
        sb.Append("source ").Append(KernelFile.OneLine(source)).Append('\n');
        sb.Append("hash ").Append(Convert.ToHexStringLower(SHA256.HashData(blob))).Append('\n');
        if (stamp is not null)
            sb.Append("stamp ").Append(KernelFile.OneLine(stamp)).Append('\n');
        sb.Append("---\n");

        var written = new HashSet<string>(StringComparer.Ordinal);
        for (var id = btf.FirstId; id <= btf.LastId; id++)
        {
            var t = btf.Get(id);
            var name = btf.NameOf(id);
            if (name.Length == 0 || !IsName(name))
                continue;
            switch (t.Kind)
            {
                case BtfKind.Struct or BtfKind.Union:
                    var kind = t.Kind == BtfKind.Struct ? "S" : "U";
                    if (written.Add(kind + " " + name))
                        WriteRecord(sb, btf, kind, name, id);
                    break;
                case BtfKind.Typedef:
                    var target = btf.Resolve(id);
                    var targetKind = btf.KindOf(target);
                    if (targetKind is BtfKind.Struct or BtfKind.Union && btf.NameOf(target).Length == 0)
                    {
                        var tk = targetKind == BtfKind.Struct ? "TS" : "TU";
                        if (written.Add("T " + name))
                            WriteRecord(sb, btf, tk, name, target);
                    }
                    break;
                case BtfKind.Enum or BtfKind.Enum64:
                    if (written.Add("E " + name))
                    {
                        sb.Append("E ").Append(name).Append(' ').Append(t.SizeOrType.ToString(CultureInfo.InvariantCulture))
                            .Append(t.KindFlag ? " s" : " u").Append('\n');
                    }
                    break;
            }
        }
        return sb.ToString();
    }

    private static void WriteRecord(StringBuilder sb, BtfTypes btf, string kind, string name, int id)
    {
        sb.Append(kind).Append(' ').Append(name).Append(' ').Append(btf.SizeOf(id).ToString(CultureInfo.InvariantCulture));
        foreach (var f in btf.GetFlattenedMembers(id))
        {
            if (!IsName(f.Name))
                continue;
            sb.Append(' ').Append(f.Name).Append('@').Append(f.BitOffset.ToString(CultureInfo.InvariantCulture));
            if (f.IsBitfield)
                sb.Append('/').Append(f.BitSize.ToString(CultureInfo.InvariantCulture));
            sb.Append(':');
            Descriptor(sb, btf, f.TypeId, 0);
        }
        sb.Append('\n');
    }

    /// <summary>C identifiers only: anything else (a hostile or odd blob) would break the line format.</summary>
    private static bool IsName(string name)
    {
        foreach (var c in name)
        {
            if (!(char.IsAsciiLetterOrDigit(c) || c is '_' or '$' or '.'))
                return false;
        }
        return name.Length > 0;
    }

    private static void Descriptor(StringBuilder sb, BtfTypes btf, int typeId, int depth)
    {
        if (depth > MaxDescriptorDepth)
        {
            sb.Append('?');
            return;
        }
        var r = btf.Resolve(typeId);
        var t = btf.Get(r);
        var size = t.SizeOrType.ToString(CultureInfo.InvariantCulture);
        switch (t.Kind)
        {
            case BtfKind.Void:
                sb.Append('v');
                break;
            case BtfKind.Int:
                var e = btf.GetInt(r);
                // A plain char is written with the signedness this architecture gives it (signed on x86, unsigned on
                // aarch64), so a declared signed or unsigned char is held to it; a declared plain char matches either.
                if (e.IsBool)
                    sb.Append('b').Append(size);
                else
                    sb.Append(e.IsSigned ? 's' : 'u').Append(size);
                break;
            case BtfKind.Float:
                sb.Append('f').Append(size);
                break;
            case BtfKind.Enum or BtfKind.Enum64:
                sb.Append(t.KindFlag ? 'E' : 'e').Append(size);
                break;
            case BtfKind.Ptr:
                sb.Append('*');
                Descriptor(sb, btf, t.TargetId, depth + 1);
                break;
            case BtfKind.Array:
                var a = btf.GetArray(r);
                sb.Append('[').Append(a.Count.ToString(CultureInfo.InvariantCulture)).Append(']');
                Descriptor(sb, btf, a.ElementType, depth + 1);
                break;
            case BtfKind.Struct or BtfKind.Union or BtfKind.Fwd:
                var union = t.Kind == BtfKind.Union || t.Kind == BtfKind.Fwd && t.KindFlag;
                var tag = btf.NameOf(r);
                sb.Append(union ? 'U' : 'S').Append(IsName(tag) ? tag : string.Empty);
                break;
            case BtfKind.FuncProto or BtfKind.Func:
                sb.Append('F');
                break;
            default:
                sb.Append('?');
                break;
        }
    }

    /// <summary>The machine a raw BTF blob (no ELF header to say) was built for, from its struct pt_regs: x86-64's has
    /// r15, i386's has bx and 4-byte longs, arm64's has pstate; "unknown" otherwise.</summary>
    public static string InferMachine(BtfTypes btf)
    {
        ArgumentNullException.ThrowIfNull(btf);
        if (!btf.TryFind("pt_regs", BtfKind.Struct, out var regs))
            return "unknown";
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var f in btf.GetFlattenedMembers(regs))
            names.Add(f.Name);
        if (names.Contains("r15") && names.Contains("orig_ax"))
            return "x86_64";
        if (names.Contains("bx") && names.Contains("orig_ax") && btf.PointerSize == 4)
            return "i386";
        if (names.Contains("pstate") && names.Contains("orig_x0"))
            return "aarch64";
        return "unknown";
    }
}
