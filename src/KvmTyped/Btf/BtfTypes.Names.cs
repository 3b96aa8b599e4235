using System.Globalization;

namespace KvmTyped.Btf;

internal sealed partial class BtfTypes
{
    /// <summary>The C spelling of a type: "unsigned int", "struct task_struct *", "char [16]", "void (*)(int)".</summary>
    public string FormatType(int id) => FormatDeclaration(id, "").Trim();

    /// <summary>Most characters <see cref="FormatDeclaration"/> builds, counting every intermediate piece: function
    /// prototypes that share parameter types many times over would otherwise spell out exponentially long text.</summary>
    internal const int MaxDeclarationWork = 1 << 20;

    /// <summary>A C declaration of <paramref name="name"/> with type <paramref name="typeId"/>:
    /// "struct list_head *next", "char comm[16]", "void (*fn)(struct sk_buff *)", "int * const p".
    /// Type tags are left out; anonymous structs, unions and enums print as "struct {...}".</summary>
    /// <exception cref="KvmFormatException">The type chain is longer than <see cref="MaxChainDepth"/>, or spelling
    /// the declaration takes more than about a million characters of work.</exception>
    public string FormatDeclaration(int typeId, string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        long work = 0;
        return Declare(typeId, name, 0, typeId, ref work);
    }

    private string Charge(string text, ref long work, int first)
    {
        work += text.Length + 1;
        if (work > MaxDeclarationWork)
            throw Fail(first, $"spelling the type takes more than {MaxDeclarationWork} characters (function prototypes sharing types over and over?)");
        return text;
    }

    private string Declare(int id, string inner, int depth, int first, ref long work)
    {
        if (depth > MaxChainDepth)
            throw Fail(first, $"type chain longer than {MaxChainDepth} (a cycle?)");
        Charge(inner, ref work, first);
        var t = Get(id);
        switch (t.Kind)
        {
            case BtfKind.Ptr:
            {
                int next = SkipTags(t.TargetId, first);
                string p = "*" + inner;
                if (KindOf(next) is BtfKind.Array or BtfKind.FuncProto)
                    p = "(" + p + ")";
                return Declare(t.TargetId, p, depth + 1, first, ref work);
            }
            case BtfKind.Const or BtfKind.Volatile or BtfKind.Restrict:
            {
                string word = t.Kind switch { BtfKind.Const => "const", BtfKind.Volatile => "volatile", _ => "restrict" };
                if (KindOf(SkipTags(t.TargetId, first)) == BtfKind.Ptr)
                    return Declare(t.TargetId, word + (inner.Length > 0 ? " " + inner : ""), depth + 1, first, ref work);
                return Charge(word + " " + Declare(t.TargetId, inner, depth + 1, first, ref work), ref work, first);
            }
            case BtfKind.TypeTag or BtfKind.Var:
                return Declare(t.TargetId, inner, depth + 1, first, ref work);
            case BtfKind.Array:
            {
                var a = GetArray(id);
                return Declare(a.ElementType, inner + "[" + a.Count.ToString(CultureInfo.InvariantCulture) + "]", depth + 1, first, ref work);
            }
            case BtfKind.FuncProto:
            {
                var ps = GetParams(id);
                string args;
                if (ps.Count == 0)
                    args = "void";
                else
                {
                    var sb = new System.Text.StringBuilder();
                    foreach (var p in ps)
                    {
                        if (sb.Length > 0)
                            sb.Append(", ");
                        sb.Append(p.TypeId == 0 ? "..." : Declare(p.TypeId, "", depth + 1, first, ref work).Trim());
                        Charge("", ref work, first);
                    }
                    args = Charge(sb.ToString(), ref work, first);
                }
                return Declare(t.TargetId, inner + "(" + args + ")", depth + 1, first, ref work);
            }
            case BtfKind.Func:
                return Declare(t.TargetId, NameOf(id), depth + 1, first, ref work);
            default:
                string baseName = BaseName(id);
                return Charge(inner.Length == 0 ? baseName : baseName + " " + inner, ref work, first);
        }
    }

    private int SkipTags(int id, int first)
    {
        for (int depth = 0; depth <= MaxChainDepth; depth++)
        {
            var t = Get(id);
            if (t.Kind != BtfKind.TypeTag)
                return id;
            id = t.TargetId;
        }
        throw Fail(first, $"type chain longer than {MaxChainDepth} (a cycle?)");
    }

    private string BaseName(int id)
    {
        var t = Get(id);
        string name = NameOf(id);
        string tag = t.Kind switch
        {
            BtfKind.Struct => "struct",
            BtfKind.Union => "union",
            BtfKind.Enum or BtfKind.Enum64 => "enum",
            BtfKind.Fwd => t.KindFlag ? "union" : "struct",
            _ => "",
        };
        if (t.Kind == BtfKind.Void)
            return "void";
        if (tag.Length == 0)
            return name.Length == 0 ? KindWord(t.Kind) : name;
        return name.Length == 0 ? tag + " {...}" : tag + " " + name;
    }
}
