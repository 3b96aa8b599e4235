using System.Buffers.Binary;
using System.Text;
using KvmTyped.Btf;

namespace KvmTyped.Tests.Btf;

/// <summary>Writes BTF blobs in code, kind by kind, for tests.</summary>
internal sealed class BtfBuilder
{
    private readonly List<uint> _words = [];
    private readonly List<byte> _strings = [];
    private readonly Dictionary<string, uint> _offsets = new(StringComparer.Ordinal);
    private readonly uint _stringBase;
    private int _nextId;

    /// <summary>A base blob (ids from 1), or a split blob continuing a base's ids and string space.</summary>
    public BtfBuilder(BtfTypes? baseTypes = null)
    {
        _nextId = baseTypes is null ? 1 : baseTypes.LastId + 1;
        _stringBase = baseTypes?.StringsLength ?? 0;
        if (baseTypes is null)
            _strings.Add(0);
    }

    public int Count => _words.Count;

    public uint Str(string s)
    {
        if (s.Length == 0)
            return 0;
        if (_offsets.TryGetValue(s, out uint o))
            return o;
        o = _stringBase + (uint)_strings.Count;
        _strings.AddRange(Encoding.UTF8.GetBytes(s));
        _strings.Add(0);
        _offsets[s] = o;
        return o;
    }

    public int Add(BtfKind kind, string name, int vlen, bool kflag, uint sizeOrType, params uint[] extra)
    {
        _words.Add(Str(name));
        _words.Add((uint)vlen | ((uint)kind << 24) | (kflag ? 0x8000_0000u : 0));
        _words.Add(sizeOrType);
        _words.AddRange(extra);
        return _nextId++;
    }

    public int Int(string name, uint size, int bits = -1, int encoding = 0, int bitOffset = 0) =>
        Add(BtfKind.Int, name, 0, false, size, ((uint)encoding << 24) | ((uint)bitOffset << 16) | (bits < 0 ? size * 8 : (uint)bits));

    public int Ptr(int target) => Add(BtfKind.Ptr, "", 0, false, (uint)target);
    public int Array(int element, int index, uint count) => Add(BtfKind.Array, "", 0, false, 0, (uint)element, (uint)index, count);
    public int Typedef(string name, int target) => Add(BtfKind.Typedef, name, 0, false, (uint)target);
    public int Const(int target) => Add(BtfKind.Const, "", 0, false, (uint)target);
    public int Volatile(int target) => Add(BtfKind.Volatile, "", 0, false, (uint)target);
    public int Restrict(int target) => Add(BtfKind.Restrict, "", 0, false, (uint)target);
    public int TypeTag(string name, int target) => Add(BtfKind.TypeTag, name, 0, false, (uint)target);
    public int Fwd(string name, bool union = false) => Add(BtfKind.Fwd, name, 0, union, 0);
    public int Float(string name, uint size) => Add(BtfKind.Float, name, 0, false, size);
    public int Func(string name, int proto, int linkage = 1) => Add(BtfKind.Func, name, linkage, false, (uint)proto);
    public int Var(string name, int type, int linkage = 1) => Add(BtfKind.Var, name, 0, false, (uint)type, (uint)linkage);
    public int DeclTag(string name, int type, int component) => Add(BtfKind.DeclTag, name, 0, false, (uint)type, unchecked((uint)component));

    /// <summary>A struct or union; members are (name, type, bit offset, bitfield size). Any bitfield → kind flag.</summary>
    public int Composite(BtfKind kind, string name, uint size, params (string Name, int Type, uint BitOffset, int Bits)[] members)
    {
        bool kflag = members.Any(m => m.Bits != 0);
        var extra = new List<uint>();
        foreach (var m in members)
        {
            extra.Add(Str(m.Name));
            extra.Add((uint)m.Type);
            extra.Add(kflag ? ((uint)m.Bits << 24) | m.BitOffset : m.BitOffset);
        }
        return Add(kind, name, members.Length, kflag, size, [.. extra]);
    }

    public int Struct(string name, uint size, params (string Name, int Type, uint BitOffset, int Bits)[] members) =>
        Composite(BtfKind.Struct, name, size, members);

    public int Union(string name, uint size, params (string Name, int Type, uint BitOffset, int Bits)[] members) =>
        Composite(BtfKind.Union, name, size, members);

    public int Enum(string name, uint size, bool signed, params (string Name, int Value)[] values)
    {
        var extra = new List<uint>();
        foreach (var v in values)
        {
            extra.Add(Str(v.Name));
            extra.Add(unchecked((uint)v.Value));
        }
        return Add(BtfKind.Enum, name, values.Length, signed, size, [.. extra]);
    }

    public int Enum64(string name, uint size, bool signed, params (string Name, long Value)[] values)
    {
        var extra = new List<uint>();
        foreach (var v in values)
        {
            extra.Add(Str(v.Name));
            extra.Add(unchecked((uint)v.Value));
            extra.Add(unchecked((uint)((ulong)v.Value >> 32)));
        }
        return Add(BtfKind.Enum64, name, values.Length, signed, size, [.. extra]);
    }

    public int FuncProto(int returnType, params (string Name, int Type)[] parameters)
    {
        var extra = new List<uint>();
        foreach (var p in parameters)
        {
            extra.Add(Str(p.Name));
            extra.Add((uint)p.Type);
        }
        return Add(BtfKind.FuncProto, "", parameters.Length, false, (uint)returnType, [.. extra]);
    }

    public int Datasec(string name, uint size, params (int Type, uint Offset, uint Size)[] vars)
    {
        var extra = new List<uint>();
        foreach (var v in vars)
        {
            extra.Add((uint)v.Type);
            extra.Add(v.Offset);
            extra.Add(v.Size);
        }
        return Add(BtfKind.Datasec, name, vars.Length, false, size, [.. extra]);
    }

    /// <summary>The blob: header (optionally longer than 24 bytes, zero-filled), types, strings.</summary>
    public byte[] Build(bool bigEndian = false, int headerLength = 24)
    {
        int typeLen = _words.Count * 4;
        var blob = new byte[headerLength + typeLen + _strings.Count];
        void U16(int at, ushort v) { if (bigEndian) BinaryPrimitives.WriteUInt16BigEndian(blob.AsSpan(at), v); else BinaryPrimitives.WriteUInt16LittleEndian(blob.AsSpan(at), v); }
        void U32(int at, uint v) { if (bigEndian) BinaryPrimitives.WriteUInt32BigEndian(blob.AsSpan(at), v); else BinaryPrimitives.WriteUInt32LittleEndian(blob.AsSpan(at), v); }
        U16(0, 0xEB9F);
        blob[2] = 1;
        U32(4, (uint)headerLength);
        U32(8, 0);
        U32(12, (uint)typeLen);
        U32(16, (uint)typeLen);
        U32(20, (uint)_strings.Count);
        for (int i = 0; i < _words.Count; i++)
            U32(headerLength + 4 * i, _words[i]);
        _strings.CopyTo(blob, headerLength + typeLen);
        return blob;
    }

    public static void WriteU32(byte[] blob, int at, uint value) => BinaryPrimitives.WriteUInt32LittleEndian(blob.AsSpan(at), value);
}
