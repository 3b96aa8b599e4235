using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;

namespace KvmTyped.Btf;

/// <summary>The types of one BTF blob (the kernel's include/uapi/linux/btf.h format), parsed and checked once,
/// then queried by id or name. A split blob (a module's BTF) continues its base's type ids and string offsets;
/// its queries see the base's types too. Instances are immutable and safe to share between threads.</summary>
/// <remarks>Every count, offset, id and name in the blob is checked when it is parsed, so a query never reads
/// outside it; chains of typedefs, qualifiers and arrays are followed at most <see cref="MaxChainDepth"/> steps,
/// so a cycle in a hostile blob fails with <see cref="KvmFormatException"/> instead of hanging.</remarks>
internal sealed partial class BtfTypes
{
    /// <summary>The magic number at offset 0, in the blob's own byte order.</summary>
    public const ushort Magic = 0xEB9F;

    /// <summary>The length of the version-1 header; a longer <c>hdr_len</c> is honoured and its tail skipped.</summary>
    public const int MinHeaderLength = 24;

    /// <summary>How many typedef, qualifier, type-tag and array links a query follows before declaring a cycle.</summary>
    public const int MaxChainDepth = 64;

    /// <summary>How deeply anonymous struct and union members may nest when members are flattened.</summary>
    public const int MaxNesting = 64;

    /// <summary>The most fields one flattening may produce.</summary>
    public const int MaxFlattenedFields = 1 << 20;

    private readonly uint[] _words;
    private readonly int[] _start;
    // The records parsed: all of them, unless _pending (a blob read from memory as it is used) has more to read.
    private int _count;
    private readonly byte[] _strings;
    private readonly uint _stringBase;
    private readonly long _typeSectionFileOffset;
    private readonly Lazy<NameIndex> _names;
    private readonly PendingBlob? _pending;

    private BtfTypes(string source, BtfTypes? baseTypes, bool bigEndian, uint[] words, int[] start, int count,
        byte[] strings, long typeSectionFileOffset, int? pointerSize, PendingBlob? pending = null)
    {
        _pending = pending;
        SourceName = source;
        Base = baseTypes;
        IsBigEndian = bigEndian;
        _words = words;
        _start = start;
        _count = count;
        _strings = strings;
        _stringBase = baseTypes?.StringsLength ?? 0;
        _typeSectionFileOffset = typeSectionFileOffset;
        FirstId = baseTypes is null ? 1 : baseTypes.LastId + 1;
        PointerSize = pointerSize;
        _names = new Lazy<NameIndex>(BuildNameIndex, LazyThreadSafetyMode.ExecutionAndPublication);
    }

    /// <summary>The file (or description) the blob came from, as named in error messages.</summary>
    public string SourceName { get; }

    /// <summary>The base types a split blob continues, or null for a base (vmlinux) blob.</summary>
    public BtfTypes? Base { get; }

    /// <summary>Whether the blob is big-endian (its magic read as 0x9FEB little-endian).</summary>
    public bool IsBigEndian { get; }

    /// <summary>The first type id this blob defines: 1, or one past the base's last id for split BTF.</summary>
    public int FirstId { get; }

    /// <summary>The last type id this blob defines (ids run from 0 = void through here).</summary>
    public int LastId => FirstId + ReadAll()._count - 1;

    /// <summary>The number of types this blob itself defines.</summary>
    public int Count => ReadAll()._count;

    /// <summary>The size of a pointer in bytes: given to <see cref="Parse(ReadOnlySpan{byte}, BtfTypes?, string?, int?)"/>,
    /// else that of the blob's <c>long</c> integer (BTF has no size for pointers), else the base's; null when unknown.</summary>
    public int? PointerSize { get; private set; }

    /// <summary>The size of <c>long</c> the types themselves record (the kernel's word, so its pointer size), whatever
    /// <see cref="PointerSize"/> the caller imposed; null when they name no <c>long</c>.</summary>
    internal int? LongSize
    {
        get
        {
            if (_longSize is null && _pending is not null)
                ReadUntilLong();
            return _longSize ?? Base?.LongSize;
        }
    }

    private int? _longSize;

    /// <summary>The length of the string space up to the end of this blob's strings (a split blob's offsets continue here).</summary>
    internal uint StringsLength => _stringBase + (uint)_strings.Length;

    /// <summary>Parses and checks a BTF blob.</summary>
    /// <param name="blob">The blob: header, type section, string section.</param>
    /// <param name="baseTypes">For split (module) BTF: the types it continues; null for a base blob.</param>
    /// <param name="sourceName">What to call the blob in error messages (a file name); "BTF" when null.</param>
    /// <param name="pointerSize">The pointer size in bytes (4 or 8), when the caller knows it; otherwise detected.</param>
    /// <exception cref="KvmFormatException">The blob is damaged or hostile.</exception>
    public static BtfTypes Parse(ReadOnlySpan<byte> blob, BtfTypes? baseTypes = null, string? sourceName = null, int? pointerSize = null)
        => Parse(blob, baseTypes, sourceName ?? "BTF", 0, pointerSize);

    /// <summary>Parses and checks a BTF blob held in memory.</summary>
    /// <inheritdoc cref="Parse(ReadOnlySpan{byte}, BtfTypes?, string?, int?)"/>
    public static BtfTypes Parse(ReadOnlyMemory<byte> blob, BtfTypes? baseTypes = null, string? sourceName = null, int? pointerSize = null)
        => Parse(blob.Span, baseTypes, sourceName ?? "BTF", 0, pointerSize);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static BtfTypes Parse(ReadOnlySpan<byte> blob, BtfTypes? baseTypes, string source, long fileOffset, int? pointerSize)
    {
        var layout = CheckHeader(blob[..Math.Min(blob.Length, MinHeaderLength)], blob.Length, baseTypes, source, fileOffset, pointerSize);
        var strSpan = blob.Slice((int)layout.StrStart, (int)layout.StrLen);
        CheckStrings(strSpan, layout, baseTypes, source, fileOffset);
        var words = new uint[layout.TypeLen / 4];
        MemoryMarshal.Cast<byte, uint>(blob.Slice((int)layout.TypeStart, (int)layout.TypeLen)).CopyTo(words);
        return FromSections(words, strSpan.ToArray(), layout, baseTypes, source, fileOffset, pointerSize);
    }

    /// <summary>Reads <paramref name="destination"/>'s length of bytes at <paramref name="address"/> (kernel memory, as
    /// Kvm.TryReadVirtual reads it; this file is also built into the schema build task, which has no Kvm).</summary>
    /// <returns>Whether every byte was read; when not, <paramref name="failure"/> says why.</returns>
    internal delegate bool ReadMemory(ulong address, Span<byte> destination, [System.Diagnostics.CodeAnalysis.NotNullWhen(false)] out string? failure);

    /// <summary>Where a blob's sections are (offsets from its start) and its byte order, from a checked header.</summary>
    private readonly record struct SectionLayout(bool BigEndian, long TypeStart, long TypeLen, long StrStart, long StrLen);

    /// <summary>Checks the header (its first <see cref="MinHeaderLength"/> bytes, or fewer when the blob is shorter)
    /// of a blob of <paramref name="blobLength"/> bytes, and places its sections.</summary>
    private static SectionLayout CheckHeader(ReadOnlySpan<byte> blob, long blobLength, BtfTypes? baseTypes, string source, long fileOffset, int? pointerSize)
    {
        if (pointerSize is not (null or 4 or 8))
            throw new ArgumentOutOfRangeException(nameof(pointerSize), pointerSize, "a pointer is 4 or 8 bytes");
        KvmFormatException Fail(long at, string what) => new(source, fileOffset + at, what);

        if (blobLength < 8)
            throw Fail(0, $"BTF blob of {blobLength} bytes is shorter than its {MinHeaderLength}-byte header");
        bool bigEndian;
        if (BinaryPrimitives.ReadUInt16LittleEndian(blob) == Magic)
            bigEndian = false;
        else if (BinaryPrimitives.ReadUInt16BigEndian(blob) == Magic)
            bigEndian = true;
        else
            throw Fail(0, $"not BTF: magic 0x{BinaryPrimitives.ReadUInt16LittleEndian(blob):x4}, expected 0xeb9f in either byte order");
        uint U32(ReadOnlySpan<byte> s) => bigEndian ? BinaryPrimitives.ReadUInt32BigEndian(s) : BinaryPrimitives.ReadUInt32LittleEndian(s);

        if (blob[2] != 1)
            throw Fail(2, $"unsupported BTF version {blob[2]} (this reader knows version 1)");
        long hdrLen = U32(blob[4..]);
        if (hdrLen < MinHeaderLength)
            throw Fail(4, $"BTF header length {hdrLen} is shorter than {MinHeaderLength}");
        if (hdrLen > blobLength)
            throw Fail(4, $"BTF header length {hdrLen} runs past the end of the {blobLength}-byte blob");
        long typeOff = U32(blob[8..]), typeLen = U32(blob[12..]), strOff = U32(blob[16..]), strLen = U32(blob[20..]);
        long typeStart = hdrLen + typeOff, typeEnd = typeStart + typeLen;
        long strStart = hdrLen + strOff, strEnd = strStart + strLen;
        if (typeEnd > blobLength)
            throw Fail(8, $"BTF type section [0x{typeStart:x}, 0x{typeEnd:x}) runs past the end of the {blobLength}-byte blob");
        if (strEnd > blobLength)
            throw Fail(16, $"BTF string section [0x{strStart:x}, 0x{strEnd:x}) runs past the end of the {blobLength}-byte blob");
        if (typeLen > 0 && strLen > 0 && typeStart < strEnd && strStart < typeEnd)
            throw Fail(8, $"BTF type section [0x{typeStart:x}, 0x{typeEnd:x}) overlaps the string section [0x{strStart:x}, 0x{strEnd:x})");
        if (typeLen % 4 != 0)
            throw Fail(12, $"BTF type section length {typeLen} is not a multiple of 4");
        if ((baseTypes?.StringsLength ?? 0) + strLen > int.MaxValue)
            throw Fail(20, "BTF string space exceeds 2 GiB");
        return new SectionLayout(bigEndian, typeStart, typeLen, strStart, strLen);
    }

    private static void CheckStrings(ReadOnlySpan<byte> strSpan, SectionLayout layout, BtfTypes? baseTypes, string source, long fileOffset)
    {
        if (baseTypes is null && (layout.StrLen == 0 || strSpan[0] != 0))
            throw new KvmFormatException(source, fileOffset + layout.StrStart, "BTF string section does not start with the empty string");
        if (layout.StrLen > 0 && strSpan[^1] != 0)
            throw new KvmFormatException(source, fileOffset + layout.StrStart + layout.StrLen - 1, "BTF string section does not end with a NUL");
    }

    /// <summary>The records of a type section (its <paramref name="words"/> as stored: swapped here when the blob's
    /// byte order is not the host's) and the string section, checked.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static BtfTypes FromSections(uint[] words, byte[] strings, SectionLayout layout, BtfTypes? baseTypes, string source, long fileOffset, int? pointerSize)
    {
        KvmFormatException Fail(long at, string what) => new(source, fileOffset + at, what);
        var (bigEndian, typeStart) = (layout.BigEndian, layout.TypeStart);
        if (bigEndian == BitConverter.IsLittleEndian)
            BinaryPrimitives.ReverseEndianness(words, words);

        // Pass 1: find each record; its length depends only on kind and vlen.
        int firstId = baseTypes is null ? 1 : baseTypes.LastId + 1;
        var start = new int[words.Length / 3 + 1];
        int count = 0;
        for (int at = 0; at < words.Length;)
        {
            long recordOffset = typeStart + 4L * at;
            int id = firstId + count;
            if (at + 3 > words.Length)
                throw Fail(recordOffset, $"BTF type id {id}: record truncated by the end of the type section");
            int length = RecordLength(words[at + 1], id, words.Length - at, source, fileOffset + recordOffset);
            start[count++] = at;
            at += length;
        }

        var types = new BtfTypes(source, baseTypes, bigEndian, words, start, count, strings,
            fileOffset + typeStart, pointerSize ?? baseTypes?.PointerSize);
        int? detected = types.Validate(0, count, (uint)types.LastId);
        if (pointerSize is null && baseTypes?.PointerSize is null && detected is not null)
            types.PointerSize = detected;
        types._longSize = detected;
        return types;
    }

    /// <summary>The length in words of the record of type <paramref name="id"/> whose info word is
    /// <paramref name="info"/>: it depends only on kind and vlen. <paramref name="left"/> words are left in the type
    /// section from the record's start (at least 3).</summary>
    /// <exception cref="KvmFormatException">An unknown kind, a record running past the section, too many ids.</exception>
    private static int RecordLength(uint info, int id, long left, string source, long recordOffset)
    {
        int kind = (int)(info >> 24) & 0x1f;
        int vlen = (int)(info & 0xffff);
        int extra = kind switch
        {
            1 or 14 or 17 => 1,
            2 or 7 or 8 or 9 or 10 or 11 or 12 or 16 or 18 => 0,
            3 => 3,
            4 or 5 or 15 or 19 => 3 * vlen,
            6 or 13 => 2 * vlen,
            _ => -1,
        };
        if (extra < 0)
            throw new KvmFormatException(source, recordOffset, $"BTF type id {id}: unknown kind {kind} (this reader knows kinds 1-19, and version-1 BTF has no layout section to skip an unknown kind by)");
        if (3L + extra > left)
            throw new KvmFormatException(source, recordOffset, $"BTF type id {id} ({(BtfKind)kind}) with vlen {vlen} runs past the end of the type section");
        if (id == int.MaxValue)
            throw new KvmFormatException(source, recordOffset, "too many BTF type ids");
        return 3 + extra;
    }

    /// <summary>Pass 2 over records [<paramref name="from"/>, <paramref name="to"/>): every name inside the string
    /// space, every referenced id at most <paramref name="lastId"/>, sizes and widths sane. Returns the size of
    /// <c>long</c> when those records name one. A tight loop accepts the good records; a record it doubts is checked
    /// again by <see cref="ValidateOne"/>, which says what is wrong.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private int? Validate(int from, int to, uint lastId)
    {
        int? longSize = null;
        uint strings = StringsLength;
        ReadOnlySpan<uint> w = _words;
        for (int i = from; i < to; i++)
        {
            int at = _start[i];
            uint info = w[at + 1];
            int vlen = (int)(info & 0xffff);
            uint st = w[at + 2];
            bool ok = w[at] < strings;
            switch ((info >> 24) & 0x1f)
            {
                case 1:
                {
                    uint enc = w[at + 3];
                    uint bits = enc & 0xff, bitOff = (enc >> 16) & 0xff;
                    ok &= st is 1 or 2 or 4 or 8 or 16 && bits + bitOff <= 128 && bits <= st * 8;
                    if (ok && st is 4 or 8 && longSize is null && IsLongName(w[at]))
                        longSize = (int)st;
                    break;
                }
                case 2 or 8 or 9 or 10 or 11 or 12 or 14 or 18:
                    ok &= st <= lastId;
                    break;
                case 17:
                    ok &= st <= lastId && w[at] != 0;
                    break;
                case 3:
                    ok &= w[at + 3] <= lastId && w[at + 4] <= lastId;
                    break;
                case 4 or 5:
                {
                    bool kflag = (info & 0x8000_0000) != 0;
                    ulong sizeBits = 8UL * st;
                    var members = w.Slice(at + 3, 3 * vlen);
                    for (int m = 0; m < members.Length; m += 3)
                    {
                        uint off = members[m + 2];
                        ulong end = kflag ? (off & 0xff_ffff) + (ulong)(off >> 24) : off;
                        ok &= members[m] < strings & members[m + 1] <= lastId & end <= sizeBits;
                    }
                    break;
                }
                case 6 or 19:
                {
                    ok &= st is 1 or 2 or 4 or 8;
                    int stride = (info >> 24 & 0x1f) == 6 ? 2 : 3;
                    var values = w.Slice(at + 3, stride * vlen);
                    for (int m = 0; m < values.Length; m += stride)
                        ok &= values[m] < strings;
                    break;
                }
                case 13:
                {
                    ok &= st <= lastId;
                    var ps = w.Slice(at + 3, 2 * vlen);
                    for (int m = 0; m < ps.Length; m += 2)
                        ok &= ps[m] < strings & ps[m + 1] <= lastId;
                    break;
                }
                case 15:
                {
                    var vars = w.Slice(at + 3, 3 * vlen);
                    for (int m = 0; m < vars.Length; m += 3)
                        ok &= vars[m] <= lastId & (ulong)vars[m + 1] + vars[m + 2] <= st;
                    break;
                }
                case 16:
                    ok &= st is 2 or 4 or 8 or 12 or 16;
                    break;
            }
            if (!ok)
                ValidateOne(i, lastId);
        }
        return longSize;
    }

    private void ValidateOne(int i, uint lastId)
    {
        uint stringsLength = StringsLength;
        int at = _start[i];
        int id = FirstId + i;
        long offset = RecordFileOffset(i);
        uint info = _words[at + 1];
        var kind = (BtfKind)((info >> 24) & 0x1f);
        int vlen = (int)(info & 0xffff);
        uint sizeOrType = _words[at + 2];

        void Name(uint nameOff, long where, string what)
        {
            if (nameOff >= stringsLength)
                throw new KvmFormatException(SourceName, where, $"BTF type id {id} ({kind}): {what} name offset 0x{nameOff:x} is outside the {stringsLength}-byte string space");
        }
        void Ref(uint target, long where, string what)
        {
            if (target > lastId)
                throw new KvmFormatException(SourceName, where, $"BTF type id {id} ({kind}): {what} refers to type id {target}, beyond the last id {lastId}");
        }

        Name(_words[at], offset, "its");
        switch (kind)
        {
            case BtfKind.Int:
            {
                uint enc = _words[at + 3];
                int bits = (int)(enc & 0xff), bitOff = (int)((enc >> 16) & 0xff);
                if (sizeOrType is not (1 or 2 or 4 or 8 or 16))
                    throw new KvmFormatException(SourceName, offset, $"BTF type id {id} (Int): size {sizeOrType} is not 1, 2, 4, 8 or 16");
                if (bits + bitOff > 128 || bits > sizeOrType * 8)
                    throw new KvmFormatException(SourceName, offset, $"BTF type id {id} (Int): {bits} bits at bit {bitOff} do not fit its {sizeOrType} bytes");
                break;
            }
            case BtfKind.Ptr or BtfKind.Typedef or BtfKind.Volatile or BtfKind.Const or BtfKind.Restrict
                or BtfKind.Func or BtfKind.TypeTag:
                Ref(sizeOrType, offset, "its target");
                break;
            case BtfKind.Var:
                Ref(sizeOrType, offset, "its type");
                break;
            case BtfKind.DeclTag:
                Ref(sizeOrType, offset, "its tagged type");
                if (_words[at] == 0)
                    throw new KvmFormatException(SourceName, offset, $"BTF type id {id} (DeclTag) has no name");
                break;
            case BtfKind.Array:
                Ref(_words[at + 3], offset + 12, "its element type");
                Ref(_words[at + 4], offset + 16, "its index type");
                break;
            case BtfKind.Struct or BtfKind.Union:
            {
                bool kflag = (info & 0x8000_0000) != 0;
                long sizeBits = 8L * sizeOrType;
                for (int m = 0; m < vlen; m++)
                {
                    int w = at + 3 + 3 * m;
                    long where = offset + 12 + 12L * m;
                    Name(_words[w], where, $"member {m}'s");
                    Ref(_words[w + 1], where + 4, $"member {m}");
                    long bitOffset = kflag ? _words[w + 2] & 0xff_ffff : _words[w + 2];
                    int bitfield = kflag ? (int)(_words[w + 2] >> 24) : 0;
                    if (bitOffset + bitfield > sizeBits)
                        throw new KvmFormatException(SourceName, where + 8, $"BTF type id {id} ({kind}): member {m} at bit {bitOffset} lies outside its {sizeOrType} bytes");
                }
                break;
            }
            case BtfKind.Enum:
            case BtfKind.Enum64:
            {
                if (sizeOrType is not (1 or 2 or 4 or 8))
                    throw new KvmFormatException(SourceName, offset, $"BTF type id {id} ({kind}): size {sizeOrType} is not 1, 2, 4 or 8");
                int stride = kind == BtfKind.Enum ? 2 : 3;
                for (int m = 0; m < vlen; m++)
                    Name(_words[at + 3 + stride * m], offset + 12 + 4L * stride * m, $"value {m}'s");
                break;
            }
            case BtfKind.FuncProto:
                Ref(sizeOrType, offset, "its return type");
                for (int m = 0; m < vlen; m++)
                {
                    long where = offset + 12 + 8L * m;
                    Name(_words[at + 3 + 2 * m], where, $"parameter {m}'s");
                    Ref(_words[at + 4 + 2 * m], where + 4, $"parameter {m}");
                }
                break;
            case BtfKind.Datasec:
                for (int m = 0; m < vlen; m++)
                {
                    int w = at + 3 + 3 * m;
                    long where = offset + 12 + 12L * m;
                    Ref(_words[w], where, $"variable {m}");
                    if ((ulong)_words[w + 1] + _words[w + 2] > sizeOrType)
                        throw new KvmFormatException(SourceName, where + 4, $"BTF type id {id} (Datasec): variable {m} at {_words[w + 1]} size {_words[w + 2]} lies outside its {sizeOrType} bytes");
                }
                break;
            case BtfKind.Float:
                if (sizeOrType is not (2 or 4 or 8 or 12 or 16))
                    throw new KvmFormatException(SourceName, offset, $"BTF type id {id} (Float): size {sizeOrType} is not 2, 4, 8, 12 or 16");
                break;
            case BtfKind.Fwd:
                break;
        }
        throw new KvmFormatException(SourceName, RecordFileOffset(i), $"BTF type id {FirstId + i}: malformed record");
    }

    private bool IsLongName(uint nameOff)
    {
        var name = StringBytes(nameOff);
        return name.SequenceEqual("long int"u8) || name.SequenceEqual("long unsigned int"u8)
            || name.SequenceEqual("unsigned long"u8) || name.SequenceEqual("long"u8)
            || name.SequenceEqual("unsigned long int"u8) || name.SequenceEqual("long signed int"u8);
    }

    private long RecordFileOffset(int local) => _typeSectionFileOffset + 4L * _start[local];

    internal KvmFormatException Fail(int id, string what)
    {
        long? offset = null;
        var owner = Owner(id);
        if (id >= owner.FirstId && id - owner.FirstId < Volatile.Read(ref owner._count))
            offset = owner.RecordFileOffset(id - owner.FirstId);
        return new KvmFormatException(owner.SourceName, offset, $"BTF type id {id}: {what}");
    }

    private BtfTypes Owner(int id)
    {
        var t = this;
        while (id < t.FirstId && t.Base is not null)
            t = t.Base;
        return t;
    }

    private int RecordStart(int id, out BtfTypes owner)
    {
        owner = Owner(id);
        int local = id - owner.FirstId;
        if (id <= 0 || local < 0 || local >= Volatile.Read(ref owner._count) && !owner.TryReadRecord(local))
            throw OutOfRange(id);
        return owner._start[local];
    }

    /// <summary>Reads the common header of type <paramref name="id"/> (0 = void).</summary>
    /// <exception cref="ArgumentOutOfRangeException">The id is not defined here or in the base.</exception>
    public BtfType Get(int id)
    {
        if (id == 0)
            return new BtfType(0, BtfKind.Void, 0, false, 0, 0);
        int at = RecordStart(id, out var o);
        uint info = o._words[at + 1];
        return new BtfType(id, (BtfKind)((info >> 24) & 0x1f), o._words[at], (info & 0x8000_0000) != 0,
            (int)(info & 0xffff), o._words[at + 2]);
    }

    /// <summary>The kind of type <paramref name="id"/>.</summary>
    public BtfKind KindOf(int id)
    {
        if (id == 0)
            return BtfKind.Void;
        int at = RecordStart(id, out var o);
        return (BtfKind)((o._words[at + 1] >> 24) & 0x1f);
    }

    /// <summary>The name of type <paramref name="id"/>; empty for anonymous types and void.</summary>
    public string NameOf(int id) => id == 0 ? "" : GetString(Get(id).NameOffset);

    /// <summary>The string at <paramref name="offset"/> in the string space (the base's strings first for split BTF).</summary>
    /// <exception cref="ArgumentOutOfRangeException">The offset is outside the string space.</exception>
    public string GetString(uint offset) => Encoding.UTF8.GetString(StringBytes(offset));

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal ReadOnlySpan<byte> StringBytes(uint offset)
    {
        if (offset < _stringBase)
            return Base!.StringBytes(offset);
        uint local = offset - _stringBase;
        if (local >= (uint)_strings.Length)
            throw new ArgumentOutOfRangeException(nameof(offset), offset, "string offset outside the BTF string space");
        if (_pending is not null)
            return PendingString((int)local);
        var s = _strings.AsSpan((int)local);
        return s[..s.IndexOf((byte)0)];
    }

    private ReadOnlySpan<uint> Extra(int id, BtfKind expected, int words)
    {
        if (id == 0 || KindOf(id) != expected)
            throw new ArgumentException($"type id {id} is {(id == 0 ? BtfKind.Void : KindOf(id))}, not {expected}", nameof(id));
        int at = RecordStart(id, out var o);
        return o._words.AsSpan(at + 3, words);
    }

    /// <summary>The encoding word of an <see cref="BtfKind.Int"/>.</summary>
    public BtfInt GetInt(int id)
    {
        uint enc = Extra(id, BtfKind.Int, 1)[0];
        return new BtfInt((int)((enc >> 24) & 0xf), (int)((enc >> 16) & 0xff), (int)(enc & 0xff));
    }

    /// <summary>The element type, index type and count of an <see cref="BtfKind.Array"/>.</summary>
    public BtfArray GetArray(int id)
    {
        var e = Extra(id, BtfKind.Array, 3);
        return new BtfArray((int)e[0], (int)e[1], e[2]);
    }

    /// <summary>The linkage of a <see cref="BtfKind.Var"/> (0 static, 1 global, 2 extern).</summary>
    public int GetVarLinkage(int id) => (int)Extra(id, BtfKind.Var, 1)[0];

    /// <summary>The component a <see cref="BtfKind.DeclTag"/> applies to: -1 for the tagged type itself,
    /// otherwise the index of a member or parameter.</summary>
    public int GetDeclTagComponent(int id) => unchecked((int)Extra(id, BtfKind.DeclTag, 1)[0]);

    /// <summary>The parameters of a <see cref="BtfKind.FuncProto"/>.</summary>
    public IReadOnlyList<BtfParam> GetParams(int id)
    {
        int n = id == 0 ? 0 : Get(id).Vlen;
        var e = Extra(id, BtfKind.FuncProto, 2 * n);
        var result = new BtfParam[n];
        for (int i = 0; i < n; i++)
            result[i] = new BtfParam(GetString(e[2 * i]), (int)e[2 * i + 1]);
        return result;
    }

    /// <summary>The variables placed in a <see cref="BtfKind.Datasec"/>.</summary>
    public IReadOnlyList<BtfVarSecInfo> GetDatasecVars(int id)
    {
        int n = id == 0 ? 0 : Get(id).Vlen;
        var e = Extra(id, BtfKind.Datasec, 3 * n);
        var result = new BtfVarSecInfo[n];
        for (int i = 0; i < n; i++)
            result[i] = new BtfVarSecInfo((int)e[3 * i], e[3 * i + 1], e[3 * i + 2]);
        return result;
    }

    /// <summary>The values of an enum (<see cref="BtfKind.Enum"/> or <see cref="BtfKind.Enum64"/>), through typedefs
    /// and qualifiers. A set kind flag marks a signed enum.</summary>
    public IReadOnlyList<BtfEnumValue> GetEnumValues(int id)
    {
        id = Resolve(id);
        var t = Get(id);
        bool is64 = t.Kind == BtfKind.Enum64;
        var e = is64 ? Extra(id, BtfKind.Enum64, 3 * t.Vlen) : Extra(id, BtfKind.Enum, 2 * t.Vlen);
        var result = new BtfEnumValue[t.Vlen];
        for (int i = 0; i < t.Vlen; i++)
        {
            long value;
            if (is64)
                value = unchecked((long)(((ulong)e[3 * i + 2] << 32) | e[3 * i + 1]));
            else
                value = t.KindFlag ? unchecked((int)e[2 * i + 1]) : e[2 * i + 1];
            result[i] = new BtfEnumValue(GetString(e[is64 ? 3 * i : 2 * i]), value);
        }
        return result;
    }

    /// <summary>Follows typedefs, qualifiers (const, volatile, restrict) and type tags to the underlying type.</summary>
    /// <exception cref="KvmFormatException">The chain is longer than <see cref="MaxChainDepth"/> (a cycle).</exception>
    public int Resolve(int id) => Skip(id, withTypedefs: true);

    /// <summary>Follows qualifiers and type tags, but not typedefs.</summary>
    public int StripQualifiers(int id) => Skip(id, withTypedefs: false);

    private int Skip(int id, bool withTypedefs)
    {
        int first = id;
        for (int depth = 0; depth <= MaxChainDepth; depth++)
        {
            var t = Get(id);
            switch (t.Kind)
            {
                case BtfKind.Typedef when withTypedefs:
                case BtfKind.Const or BtfKind.Volatile or BtfKind.Restrict or BtfKind.TypeTag:
                    id = t.TargetId;
                    break;
                default:
                    return id;
            }
        }
        throw Fail(first, $"chain of typedefs and qualifiers longer than {MaxChainDepth} (a cycle?)");
    }

    /// <summary>The size in bytes of a type: its recorded size, the pointer size, element size × count for arrays,
    /// through typedefs, qualifiers and variables.</summary>
    /// <exception cref="KvmException">The type has no size (void, function, forward declaration, tag), or a
    /// pointer size is needed and unknown.</exception>
    /// <exception cref="KvmFormatException">A chain is cyclic or a size overflows.</exception>
    public long SizeOf(int id)
    {
        if (TrySizeOf(id, out long size, out string? why))
            return size;
        throw new KvmException($"{SourceName}: BTF type id {id} ({Describe(id)}): {why}");
    }

    /// <summary>Like <see cref="SizeOf"/>, returning false (with the reason) for types that have no size.</summary>
    public bool TrySizeOf(int id, out long size, out string? why)
    {
        int first = id;
        long multiplier = 1;
        for (int depth = 0; depth <= MaxChainDepth; depth++)
        {
            var t = Get(id);
            long unit;
            switch (t.Kind)
            {
                case BtfKind.Int or BtfKind.Enum or BtfKind.Enum64 or BtfKind.Struct or BtfKind.Union
                    or BtfKind.Float or BtfKind.Datasec:
                    unit = t.SizeOrType;
                    break;
                case BtfKind.Ptr:
                    if (PointerSize is not int ps)
                    {
                        size = 0;
                        why = "the pointer size is unknown (the BTF names no long integer and none was given)";
                        return false;
                    }
                    unit = ps;
                    break;
                case BtfKind.Typedef or BtfKind.Const or BtfKind.Volatile or BtfKind.Restrict or BtfKind.TypeTag or BtfKind.Var:
                    id = t.TargetId;
                    continue;
                case BtfKind.Array:
                {
                    var a = GetArray(id);
                    multiplier = CheckedMultiply(multiplier, a.Count, first);
                    id = a.ElementType;
                    continue;
                }
                default:
                    size = 0;
                    why = $"{t.Kind} has no size";
                    return false;
            }
            size = CheckedMultiply(multiplier, unit, first);
            why = null;
            return true;
        }
        throw Fail(first, $"chain of typedefs, qualifiers and arrays longer than {MaxChainDepth} (a cycle?)");
    }

    private long CheckedMultiply(long a, long b, int id)
    {
        try
        {
            return checked(a * b);
        }
        catch (OverflowException)
        {
            throw Fail(id, "size overflows 64 bits");
        }
    }

    /// <summary>A short description for messages: kind and name.</summary>
    internal string Describe(int id)
    {
        var t = Get(id);
        string name = NameOf(id);
        return name.Length == 0 ? $"anonymous {t.Kind}" : $"{t.Kind} {name}";
    }
}
