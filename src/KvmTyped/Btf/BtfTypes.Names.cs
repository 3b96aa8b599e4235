using System.Globalization;

namespace KvmTyped.Btf;

public sealed partial class BtfTypes
{
    /// <summary>The C spelling of a type: "unsigned int", "struct task_struct *", "char [16]", "void (*)(int)".</summary>
    public string FormatType(int id) => FormatDeclaration(id, "").Trim();

    /// <summary>A C declaration of <paramref name="name"/> with type <paramref name="typeId"/>:
    /// "struct list_head *next", "char comm[16]", "void (*fn)(struct sk_buff *)", "int * const p".
    /// Type tags are left out; anonymous structs, unions and enums print as "struct {...}".</summary>
    public string FormatDeclaration(int typeId, string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        return Declare(typeId, name, 0, typeId);
    }

    private string Declare(int id, string inner, int depth, int first)
    {
        if (depth > MaxChainDepth)
            throw Fail(first, $"type chain longer than {MaxChainDepth} (a cycle?)");
        var t = Get(id);
        switch (t.Kind)
        {
            case BtfKind.Ptr:
            {
                int next = SkipTags(t.TargetId, first);
                string p = "*" + inner;
                if (KindOf(next) is BtfKind.Array or BtfKind.FuncProto)
                    p = "(" + p + ")";
                return Declare(t.TargetId, p, depth + 1, first);
            }
            case BtfKind.Const or BtfKind.Volatile or BtfKind.Restrict:
            {
                string word = t.Kind switch { BtfKind.Const => "const", BtfKind.Volatile => "volatile", _ => "restrict" };
                if (KindOf(SkipTags(t.TargetId, first)) == BtfKind.Ptr)
                    return Declare(t.TargetId, word + (inner.Length > 0 ? " " + inner : ""), depth + 1, first);
                return word + " " + Declare(t.TargetId, inner, depth + 1, first);
            }
            case BtfKind.TypeTag or BtfKind.Var:
                return Declare(t.TargetId, inner, depth + 1, first);
            case BtfKind.Array:
            {
                var a = GetArray(id);
                return Declare(a.ElementType, inner + "[" + a.Count.ToString(CultureInfo.InvariantCulture) + "]", depth + 1, first);
            }
            case BtfKind.FuncProto:
            {
                var ps = GetParams(id);
                string args = ps.Count == 0 ? "void"
                    : string.Join(", ", ps.Select(p => p.TypeId == 0 ? "..." : Declare(p.TypeId, "", depth + 1, first).Trim()));
                return Declare(t.TargetId, inner + "(" + args + ")", depth + 1, first);
            }
            case BtfKind.Func:
                return Declare(t.TargetId, NameOf(id), depth + 1, first);
            default:
                string baseName = BaseName(id);
                return inner.Length == 0 ? baseName : baseName + " " + inner;
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
