using System.Globalization;

namespace KvmTyped.Symbols;

/// <summary>An address named as the kernel names code in an oops: the symbol it lies in, the offset into it and the
/// symbol's length (the distance to the next symbol), and the module when it is module code — or, when no symbol
/// region holds the address (a heap pointer, a user address), why not.</summary>
/// <param name="Address">The address asked about.</param>
/// <param name="Name">The symbol, or null when none names the address.</param>
/// <param name="Offset">Address − the symbol's address. For a return address (looked up at address − 1, as the
/// kernel's <c>%pB</c> does) it may equal <see cref="Size"/>.</param>
/// <param name="Size">The distance from the symbol to the next one (bounded by the end of its region); 0 when unknown.</param>
/// <param name="Module">The module the symbol belongs to; null for the kernel image.</param>
/// <param name="Reason">Why no symbol names the address; null when one does.</param>
public readonly record struct SymbolizedAddress(ulong Address, string? Name, ulong Offset, ulong Size, string? Module, string? Reason)
{
    /// <summary>Whether a symbol names the address.</summary>
    public bool IsKnown => Name is not null;

    /// <summary>The symbol's own address (<see cref="Address"/> − <see cref="Offset"/>); 0 when none names the address.</summary>
    public ulong SymbolAddress => Name is null ? 0 : Address - Offset;

    /// <summary>"func+0x1c/0x40 [fat]" as the kernel prints it (without "/len" when the length is unknown), or
    /// "0x… (reason)" when no symbol names the address.</summary>
    public override string ToString()
    {
        var inv = CultureInfo.InvariantCulture;
        if (Name is null)
            return "0x" + Address.ToString("x", inv) + " (" + Reason + ")";
        var text = Name + "+0x" + Offset.ToString("x", inv) + (Size > 0 ? "/0x" + Size.ToString("x", inv) : "");
        return Module is null ? text : text + " [" + Module + "]";
    }
}
