using System.Diagnostics.CodeAnalysis;
using System.Text.Json;

namespace KvmTyped.Tools;

/// <summary>Prints a struct or union read from kernel memory, member by member, typed by the kernel's BTF: integers
/// in decimal, pointers in hex, char arrays as strings, enums by name, nested structs indented, arrays of up to 64
/// elements (crash's <c>struct</c> command; <c>kvmtyped struct</c>).</summary>
/// <param name="btf">The kernel's types.</param>
public sealed class StructPrinter(KernelBtf btf)
{
    private readonly KernelBtf _btf = btf ?? throw new ArgumentNullException(nameof(btf));

    /// <summary>Put each member's byte offset in front of it, as crash's <c>struct -o</c> does.</summary>
    public bool ShowOffsets { get; init; }

    /// <summary>The size of the struct or union <paramref name="type"/> ("task_struct", "struct page", a typedef of
    /// one); false when the BTF has no such type, with the reason.</summary>
    public bool TryGetSize(string type, out ulong size, [NotNullWhen(false)] out string? why)
    {
        ArgumentNullException.ThrowIfNull(type);
        size = 0;
        if (!_btf.Types.TryFindComposite(type, out var id))
        {
            why = $"the kernel's BTF has no struct or union \"{type}\"";
            return false;
        }
        size = (ulong)_btf.Types.SizeOf(id);
        why = null;
        return true;
    }

    /// <summary>Writes <paramref name="data"/> (the bytes of one <paramref name="type"/>) as text.</summary>
    /// <exception cref="KvmException">No such type, or it cannot be printed (the message says why).</exception>
    public void WriteText(TextWriter output, string type, ReadOnlySpan<byte> data, string? address) =>
        new Btf.BtfValuePrinter(_btf.Types) { ShowOffsets = ShowOffsets }.WriteText(output, Find(type), data, address);

    /// <summary>Writes <paramref name="data"/> (the bytes of one <paramref name="type"/>) as JSON:
    /// <c>{"type":"struct …","address":"0x…","value":{…}}</c>.</summary>
    /// <exception cref="KvmException">No such type, or it cannot be printed (the message says why).</exception>
    public void WriteJson(Utf8JsonWriter output, string type, ReadOnlySpan<byte> data, string? address) =>
        new Btf.BtfValuePrinter(_btf.Types).WriteJson(output, Find(type), data, address);

    private int Find(string type) =>
        _btf.Types.TryFindComposite(type, out var id) ? id : throw new KvmException($"the kernel's BTF has no struct or union \"{type}\"");
}
