using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;
using KvmTyped.Btf;

namespace KvmTyped.Dwarf;

/// <summary>Writes a BTF blob (the kernel's include/uapi/linux/btf.h, version 1): type records by id, a string section
/// with each string stored once. Ids may be reserved first and defined later, so a struct can be referred to before its
/// members are known (the order of records is the order of ids, whatever order they were defined in).</summary>
internal sealed class BtfWriter
{
    /// <summary>The most types one blob may hold.</summary>
    public const int MaxTypes = 1 << 24;

    /// <summary>The most members, values or parameters one record may have (BTF's vlen is 16 bits).</summary>
    public const int MaxVlen = 0xffff;

    /// <summary>The largest string section (BTF name offsets are 32 bits; the kernel allows 16 MiB).</summary>
    public const int MaxStringBytes = 1 << 30;

    private uint[] _words = new uint[1 << 12];
    private int _wordCount;
    private int[] _start = new int[1 << 10];
    private int[] _length = new int[1 << 10];
    private int _count;

    private byte[] _strings = new byte[1 << 12];
    private int _stringLength = 1; // offset 0 is the empty string
    private int[] _buckets = new int[1 << 12];
    private readonly List<(int Offset, int Length, int Hash)> _entries = [];

    /// <summary>The number of type ids handed out (the last id).</summary>
    public int Count => _count;

    /// <summary>Hands out the next type id, to be given its record by <see cref="Define"/>.</summary>
    /// <exception cref="KvmException">More than <see cref="MaxTypes"/> types.</exception>
    public int Reserve()
    {
        if (_count >= MaxTypes)
            throw new KvmException($"more than {MaxTypes} BTF types");
        if (_count == _start.Length)
        {
            Array.Resize(ref _start, _count * 2);
            Array.Resize(ref _length, _count * 2);
        }
        _start[_count] = -1;
        return ++_count;
    }

    /// <summary>Whether a reserved id has its record.</summary>
    public bool IsDefined(int id) => _start[id - 1] >= 0;

    /// <summary>Gives a reserved id its record.</summary>
    /// <param name="id">The id from <see cref="Reserve"/>.</param>
    /// <param name="kind">The kind.</param>
    /// <param name="name">The name's offset from <see cref="String(ReadOnlySpan{byte})"/> (0 = anonymous).</param>
    /// <param name="vlen">The member, value or parameter count (≤ <see cref="MaxVlen"/>).</param>
    /// <param name="kindFlag">The kind flag (bitfield offsets, union forward, signed enum).</param>
    /// <param name="sizeOrType">The size or the referenced id.</param>
    /// <param name="extra">The words after the common header.</param>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void Define(int id, BtfKind kind, uint name, int vlen, bool kindFlag, uint sizeOrType, ReadOnlySpan<uint> extra)
    {
        if (id < 1 || id > _count || _start[id - 1] >= 0)
            throw new InvalidOperationException($"BTF type id {id} is not reserved or already defined");
        if ((uint)vlen > MaxVlen)
            throw new ArgumentOutOfRangeException(nameof(vlen), vlen, $"more than {MaxVlen} members");
        int need = 3 + extra.Length;
        if (_wordCount + need > _words.Length)
            Array.Resize(ref _words, Math.Max(_words.Length * 2, _wordCount + need));
        var w = _words.AsSpan(_wordCount, need);
        w[0] = name;
        w[1] = (uint)vlen | (uint)kind << 24 | (kindFlag ? 0x8000_0000u : 0);
        w[2] = sizeOrType;
        extra.CopyTo(w[3..]);
        _start[id - 1] = _wordCount;
        _length[id - 1] = need;
        _wordCount += need;
    }

    /// <summary>Adds a record under a new id.</summary>
    public int Add(BtfKind kind, uint name, int vlen, bool kindFlag, uint sizeOrType, ReadOnlySpan<uint> extra)
    {
        int id = Reserve();
        Define(id, kind, name, vlen, kindFlag, sizeOrType, extra);
        return id;
    }

    /// <summary>The offset of a string in the string section, adding it once.</summary>
    public uint String(string s) => String(Encoding.UTF8.GetBytes(s));

    /// <summary>The offset of a string (UTF-8, no NUL inside) in the string section, adding it once.</summary>
    /// <exception cref="KvmException">The strings would exceed <see cref="MaxStringBytes"/>.</exception>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public uint String(ReadOnlySpan<byte> s)
    {
        if (s.IsEmpty)
            return 0;
        int hash = Hash(s);
        int mask = _buckets.Length - 1;
        for (int b = hash & mask; ; b = (b + 1) & mask)
        {
            int e = _buckets[b];
            if (e == 0)
            {
                if (_stringLength + s.Length + 1 > MaxStringBytes)
                    throw new KvmException($"BTF strings exceed {MaxStringBytes} bytes");
                if (_stringLength + s.Length + 1 > _strings.Length)
                    Array.Resize(ref _strings, Math.Max(_strings.Length * 2, _stringLength + s.Length + 1));
                int offset = _stringLength;
                s.CopyTo(_strings.AsSpan(offset));
                _strings[offset + s.Length] = 0;
                _stringLength += s.Length + 1;
                _entries.Add((offset, s.Length, hash));
                _buckets[b] = _entries.Count;
                if (_entries.Count * 2 > _buckets.Length)
                    Grow();
                return (uint)offset;
            }
            var (o, l, h) = _entries[e - 1];
            if (h == hash && l == s.Length && _strings.AsSpan(o, l).SequenceEqual(s))
                return (uint)o;
        }
    }

    private void Grow()
    {
        _buckets = new int[_buckets.Length * 2];
        int mask = _buckets.Length - 1;
        for (int i = 0; i < _entries.Count; i++)
        {
            int b = _entries[i].Hash & mask;
            while (_buckets[b] != 0)
                b = (b + 1) & mask;
            _buckets[b] = i + 1;
        }
    }

    private static int Hash(ReadOnlySpan<byte> s)
    {
        uint h = 2166136261;
        foreach (byte b in s)
            h = (h ^ b) * 16777619;
        return (int)(h & 0x7fff_ffff);
    }

    /// <summary>The blob: a 24-byte header, the records in id order, the strings.</summary>
    /// <exception cref="InvalidOperationException">An id was reserved and never defined.</exception>
    public byte[] ToArray(bool bigEndian)
    {
        const int HeaderLength = 24;
        long typeBytes = 4L * _wordCount;
        long total = HeaderLength + typeBytes + _stringLength;
        if (total > Array.MaxLength)
            throw new KvmException($"BTF blob of {total} bytes is too large");
        var blob = new byte[total];
        var span = blob.AsSpan();
        void U32(int at, uint v)
        {
            if (bigEndian)
                BinaryPrimitives.WriteUInt32BigEndian(blob.AsSpan(at), v);
            else
                BinaryPrimitives.WriteUInt32LittleEndian(blob.AsSpan(at), v);
        }
        if (bigEndian)
            BinaryPrimitives.WriteUInt16BigEndian(span, BtfTypes.Magic);
        else
            BinaryPrimitives.WriteUInt16LittleEndian(span, BtfTypes.Magic);
        blob[2] = 1;
        U32(4, HeaderLength);
        U32(8, 0);
        U32(12, (uint)typeBytes);
        U32(16, (uint)typeBytes);
        U32(20, (uint)_stringLength);
        var types = MemoryMarshal.Cast<byte, uint>(span.Slice(HeaderLength, (int)typeBytes));
        int at = 0;
        for (int i = 0; i < _count; i++)
        {
            if (_start[i] < 0)
                throw new InvalidOperationException($"BTF type id {i + 1} was reserved and never defined");
            _words.AsSpan(_start[i], _length[i]).CopyTo(types[at..]);
            at += _length[i];
        }
        if (bigEndian == BitConverter.IsLittleEndian)
            BinaryPrimitives.ReverseEndianness(types, types);
        _strings.AsSpan(0, _stringLength).CopyTo(span[(HeaderLength + (int)typeBytes)..]);
        return blob;
    }
}
