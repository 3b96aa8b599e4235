using System.Globalization;

namespace KvmTyped.Formats;

/// <summary>VMCOREINFO <c>NUMBER(name)</c> values in every form the kernel writes them, as 64-bit patterns.</summary>
/// <remarks>
/// x86 writes NUMBER(x) as signed decimal (<c>NUMBER(phys_base)=-769654784</c>); arm64's
/// arch_crash_save_vmcoreinfo writes several with <c>0x%llx</c>, some above 2^63
/// (<c>NUMBER(kimage_voffset)=0xffffba1342000000</c>, <c>NUMBER(KERNELPACMASK)=0xffff000000000000</c>), next to
/// decimal ones (<c>NUMBER(VA_BITS)=48</c>). <see cref="VmcoreInfo.Number"/> reads only signed decimal and so misses the
/// hex forms; this reads all three and returns the two's-complement bit pattern, which is what address arithmetic
/// (VA − kimage_voffset) needs.
/// </remarks>
internal static class VmcoreNumber
{
    /// <summary>Longest value text accepted ("0x" and 16 hex digits, or a sign and 20 decimal digits).</summary>
    public const int MaxLength = 21;

    /// <summary>NUMBER(<paramref name="name"/>) of <paramref name="info"/> as a 64-bit pattern, or null when absent or
    /// not a number.</summary>
    public static ulong? Get(VmcoreInfo info, string name)
    {
        ArgumentNullException.ThrowIfNull(info);
        ArgumentNullException.ThrowIfNull(name);
        return TryParse(info[$"NUMBER({name})"], out var value) ? value : null;
    }

    /// <summary>Parses "0x" followed by 1–16 hex digits, an unsigned decimal up to 2^64 − 1, or a negative decimal
    /// down to −2^63 (returned as its two's complement).</summary>
    public static bool TryParse(string? text, out ulong value)
    {
        value = 0;
        if (text is null)
            return false;
        var s = text.AsSpan().Trim();
        if (s.IsEmpty || s.Length > MaxLength)
            return false;
        if (s.StartsWith("0x", StringComparison.OrdinalIgnoreCase))
        {
            var digits = s[2..];
            return digits.Length is > 0 and <= 16
                && ulong.TryParse(digits, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out value);
        }
        if (s[0] == '-')
        {
            if (!long.TryParse(s, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var signed))
                return false;
            value = unchecked((ulong)signed);
            return true;
        }
        return ulong.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out value);
    }
}
