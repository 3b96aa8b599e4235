#if KVMTYPED_SCHEMA_COPY
namespace KvmTyped.Generators.Schema;
#else
namespace KvmTyped.Tools;
#endif

/// <summary>The type names every schema may use without declaring them, with the C type each one stands for: the one
/// list the source generator (which compiles this file too), schema import and schemas/kvmtyped-types.h (a test keeps
/// the header equal to it) share.</summary>
internal static class BuiltinTypeNames
{
    /// <summary>Each name and its C type.</summary>
    public static readonly (string Name, string CType)[] All = new[]
    {
        ("u8", "unsigned char"), ("__u8", "unsigned char"), ("uint8_t", "unsigned char"),
        ("s8", "signed char"), ("__s8", "signed char"), ("int8_t", "signed char"),
        ("u16", "unsigned short"), ("__u16", "unsigned short"), ("uint16_t", "unsigned short"), ("__le16", "unsigned short"), ("__be16", "unsigned short"),
        ("s16", "short"), ("__s16", "short"), ("int16_t", "short"),
        ("u32", "unsigned int"), ("__u32", "unsigned int"), ("uint32_t", "unsigned int"), ("__le32", "unsigned int"), ("__be32", "unsigned int"),
        ("uid_t", "unsigned int"), ("gid_t", "unsigned int"),
        ("s32", "int"), ("__s32", "int"), ("int32_t", "int"), ("pid_t", "int"),
        ("u64", "unsigned long long"), ("__u64", "unsigned long long"), ("uint64_t", "unsigned long long"), ("__le64", "unsigned long long"), ("__be64", "unsigned long long"),
        ("s64", "long long"), ("__s64", "long long"), ("int64_t", "long long"),
        ("size_t", "unsigned long"), ("uintptr_t", "unsigned long"),
        ("ssize_t", "long"), ("intptr_t", "long"), ("ptrdiff_t", "long"),
        ("bool", "_Bool"),
    };
}
