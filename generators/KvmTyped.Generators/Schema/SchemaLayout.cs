using System;
using System.Collections.Generic;

namespace KvmTyped.Generators.Schema;

/// <summary>A named member's place in a struct. For a bitfield, Offset is the byte holding its first bit, Size its
/// declared type's size, BitOffset its bit position from the struct's start (bit 0 = lowest bit of byte 0) and
/// BitSize its width. For other members BitOffset = Offset * 8 and BitSize = 0.</summary>
internal sealed record FieldLayout(string Name, CType Type, long Offset, long Size, long BitOffset, int BitSize);

/// <summary>The layout of one complete struct or union under one data model. Fields lists every named member
/// reachable without a name (anonymous members flattened), in declaration order.</summary>
internal sealed record StructLayout(string Name, long Size, int Align, EquatableArray<FieldLayout> Fields);

/// <summary>Computes struct layouts by the System V i386 (ILP32) and x86-64 (LP64) ABI rules, as gcc does them:
/// i386 aligns 8-byte scalars to 4 inside structs; a bitfield may not span more units of its type's alignment than
/// the type has; named bitfields align the struct, unnamed ones do not; packed drops member alignment to 1;
/// aligned(N) raises it.</summary>
internal sealed class SchemaLayout
{
    private readonly ResolvedSchema _schema;
    private readonly bool _lp64;
    private readonly Dictionary<string, StructLayout?> _done = new(StringComparer.Ordinal);

    public SchemaLayout(ResolvedSchema schema, bool lp64)
    {
        _schema = schema;
        _lp64 = lp64;
    }

    public bool Lp64 => _lp64;

    /// <summary>Size in bytes of a scalar kind; enums and records are handled by <see cref="SizeAlign"/>.</summary>
    public static int ScalarSize(CTypeKind kind, bool lp64) => kind switch
    {
        CTypeKind.Bool or CTypeKind.Char or CTypeKind.SChar or CTypeKind.UChar => 1,
        CTypeKind.Short or CTypeKind.UShort => 2,
        CTypeKind.Int or CTypeKind.UInt or CTypeKind.Float or CTypeKind.Enum => 4,
        CTypeKind.Long or CTypeKind.ULong or CTypeKind.Pointer => lp64 ? 8 : 4,
        CTypeKind.LongLong or CTypeKind.ULongLong or CTypeKind.Double => 8,
        _ => 0,
    };

    /// <summary>The layout of a complete, valid struct; null for broken or preserve_access_index structs.</summary>
    public StructLayout? Get(string name)
    {
        if (_done.TryGetValue(name, out var cached)) return cached;
        if (!_schema.StructsByName.TryGetValue(name, out var s) || _schema.Broken.Contains(name) || s.PreserveAccessIndex)
        {
            _done[name] = null;
            return null;
        }
        _done[name] = null;
        var layout = Compute(s);
        _done[name] = layout;
        return layout;
    }

    /// <summary>Size and alignment inside a struct. Records must be complete and valid.</summary>
    public (long Size, int Align) SizeAlign(CType t)
    {
        switch (t.Kind)
        {
            case CTypeKind.Struct:
            case CTypeKind.Union:
                var inner = Get(t.Name) ?? throw new InvalidOperationException("no layout for " + t);
                return (inner.Size, inner.Align);
            case CTypeKind.Array:
                var (size, align) = SizeAlign(t.Target!);
                return (t.Length < 0 ? 0 : LimitedProduct(size, t.Length), align);
            case CTypeKind.Enum:
                var wide = _schema.EnumsByName.TryGetValue(t.Name, out var e) && e.Underlying is CTypeKind.LongLong or CTypeKind.ULongLong;
                return wide ? (8, _lp64 ? 8 : 4) : (4, 4);
            default:
                var n = ScalarSize(t.Kind, _lp64);
                return (n, !_lp64 && n == 8 ? 4 : n);
        }
    }

    /// <summary>size × count, or long.MaxValue when that exceeds <see cref="SchemaLimits.MaxBytes"/> (never wraps).</summary>
    private static long LimitedProduct(long size, long count)
    {
        if (size <= 0 || count <= 0) return 0;
        return size > SchemaLimits.MaxBytes / count ? long.MaxValue : size * count;
    }

    private StructLayout Compute(StructDef s)
    {
        long bitPos = 0;
        long maxBits = 0;
        var align = 1;
        var members = new List<FieldLayout>();
        foreach (var f in s.Fields)
        {
            var (size, typeAlign) = SizeAlign(f.Type);
            if (size > SchemaLimits.MaxBytes)
            {
                throw new SchemaLimitException(s.Name, f.Pos, "member '" + (f.Name is null ? f.Type.ToString() : f.Type.Declare(f.Name)) + "' of " + Describe(s) +
                    " is larger than the limit of " + SchemaLimits.MaxBytesText + " bytes");
            }
            var packed = s.Packed || f.Packed;
            var fieldAlign = packed ? 1 : typeAlign;
            if (f.AlignAttr > 0) fieldAlign = Math.Max(fieldAlign, f.AlignAttr);
            long start;
            if (s.IsUnion) bitPos = 0;
            if (f.IsBitfield)
            {
                var width = f.BitWidth;
                if (width == 0)
                {
                    if (!s.IsUnion) bitPos = RoundUp(bitPos, typeAlign * 8L);
                    maxBits = Math.Max(maxBits, bitPos);
                    continue;
                }
                // gcc turns a bitfield that fills a whole machine mode at a position aligned for that mode into an
                // ordinary field; with aligned(N) on it, i386 then keeps the mode's 8-byte alignment for a 64-bit one.
                var wholeMode = !_lp64 && f.AlignAttr > 0 && !packed && width == 64 && size == 8 && (s.IsUnion || bitPos % 64 == 0);
                if (f.AlignAttr > 0) bitPos = RoundUp(bitPos, f.AlignAttr * 8L);
                if (!packed && ExcessUnitSpan(bitPos, width, typeAlign * 8L, size * 8)) bitPos = RoundUp(bitPos, typeAlign * 8L);
                start = bitPos;
                bitPos += width;
                if (wholeMode) fieldAlign = Math.Max(fieldAlign, 8);
                if (f.Name is not null) align = Math.Max(align, f.AlignAttr > 0 ? fieldAlign : packed ? 1 : typeAlign);
                if (f.Name is not null) members.Add(new FieldLayout(f.Name, f.Type, start / 8, size, start, width));
            }
            else
            {
                bitPos = RoundUp(bitPos, fieldAlign * 8L);
                start = bitPos;
                bitPos += size * 8;
                align = Math.Max(align, fieldAlign);
                if (f.Name is not null)
                {
                    members.Add(new FieldLayout(f.Name, f.Type, start / 8, size, start, 0));
                }
                else if (f.Type.IsRecord)
                {
                    var inner = Get(f.Type.Name)!;
                    foreach (var m in inner.Fields)
                    {
                        members.Add(m with { Offset = m.Offset + start / 8, BitOffset = m.BitOffset + start });
                    }
                }
            }
            maxBits = Math.Max(maxBits, bitPos);
            if (maxBits > SchemaLimits.MaxBytes * 8) throw TooLarge(s);
        }
        align = Math.Max(align, s.AlignAttr);
        if (RoundUp((maxBits + 7) / 8, align) > SchemaLimits.MaxBytes) throw TooLarge(s);
        var bytes = (maxBits + 7) / 8;
        return new StructLayout(s.Name, RoundUp(bytes, align), align, members.ToEquatableArray());
    }

    private static string Describe(StructDef s) => s.Spelling.Length > 0 ? "'" + s.Spelling + "'" : "an anonymous " + (s.IsUnion ? "union" : "struct");

    private static SchemaLimitException TooLarge(StructDef s) =>
        new(s.Name, s.Pos, Describe(s) + " is larger than the limit of " + SchemaLimits.MaxBytesText + " bytes");

    private static bool ExcessUnitSpan(long bitPos, int width, long alignBits, long typeBits)
    {
        var offset = bitPos % alignBits;
        return (offset + width + alignBits - 1) / alignBits > typeBits / alignBits;
    }

    private static long RoundUp(long value, long align) => align <= 1 ? value : (value + align - 1) / align * align;
}

/// <summary>A struct or member exceeds <see cref="SchemaLimits.MaxBytes"/>; <see cref="SchemaResolver"/> reports it as
/// KVMT0009 at <see cref="Pos"/> and marks <see cref="Struct"/> broken.</summary>
internal sealed class SchemaLimitException : Exception
{
    public SchemaLimitException(string structName, SourcePos pos, string message)
        : base(message)
    {
        Struct = structName;
        Pos = pos;
    }

    public string Struct { get; }

    public SourcePos Pos { get; }
}
