using KvmTyped.Btf;
using KvmTyped.Types;

namespace KvmTyped;

/// <summary>One way a complete (not relocated) struct's computed layout differs from the kernel's BTF.</summary>
/// <param name="StructName">The C tag.</param>
/// <param name="Member">The member, or null when the struct's size differs.</param>
/// <param name="Message">What differs, e.g. "struct list_head: size 16, but the kernel's is 24".</param>
public sealed record KernelTypeDisagreement(string StructName, string? Member, string Message);

/// <summary>The outcome of <see cref="KernelTypeCheck.Check(Kvm, IEnumerable{KernelStructLayout})"/>.</summary>
/// <param name="Agreeing">Structs whose size and every member's offset, size and bitfield width agree with the BTF.</param>
/// <param name="Disagreements">Every difference found (a struct may have several).</param>
/// <param name="NotInBtf">Structs the kernel's BTF does not name (not checked).</param>
public sealed record KernelTypeCheckResult(IReadOnlyList<string> Agreeing, IReadOnlyList<KernelTypeDisagreement> Disagreements, IReadOnlyList<string> NotInBtf)
{
    /// <summary>True when nothing disagrees.</summary>
    public bool AllAgree => Disagreements.Count == 0;
}

/// <summary>Checks complete struct declarations — whose layout the schema computes instead of taking it from the
/// kernel — against the kernel's BTF where it has a type of the same name: the size, and each member's offset, size
/// and bitfield position. A disagreement means the schema does not describe this kernel: reads through it would be
/// wrong, so callers report it as a warning.</summary>
public static class KernelTypeCheck
{
    /// <summary>Checks <paramref name="layouts"/> against the BTF of <paramref name="kvm"/> (<see cref="KernelBtf.For"/>).</summary>
    /// <exception cref="KvmException">The image has no BTF.</exception>
    public static KernelTypeCheckResult Check(Kvm kvm, IEnumerable<KernelStructLayout> layouts)
    {
        ArgumentNullException.ThrowIfNull(kvm);
        return Check(KernelBtf.For(kvm).Types, kvm.Release is { } r ? $"kernel {r}" : "the kernel", layouts);
    }

    /// <summary>Checks layouts of generated complete views against the BTF of <paramref name="kvm"/>.</summary>
    /// <param name="kvm">The image.</param>
    /// <param name="views">Layouts, e.g. <c>list_head.StaticLayout(kvm.DataModel)</c>; nulls (relocated views) are skipped.</param>
    public static KernelTypeCheckResult Check(Kvm kvm, params KernelStructLayout?[] views)
    {
        ArgumentNullException.ThrowIfNull(views);
        return Check(kvm, views.OfType<KernelStructLayout>());
    }

    /// <summary>Checks the layout of the generated view <typeparamref name="T"/> under the image's data model.</summary>
    public static KernelTypeCheckResult Check<T>(Kvm kvm) where T : struct, IKernelView<T>
    {
        ArgumentNullException.ThrowIfNull(kvm);
        return Check(kvm, T.StaticLayout(kvm.DataModel));
    }

    /// <summary>Checks <paramref name="layouts"/> against <paramref name="btf"/>.</summary>
    /// <param name="btf">The kernel's types.</param>
    /// <param name="image">How messages name the kernel, e.g. "kernel 6.1.0-13-amd64".</param>
    /// <param name="layouts">Computed layouts of complete structs.</param>
    internal static KernelTypeCheckResult Check(BtfTypes btf, string image, IEnumerable<KernelStructLayout> layouts)
    {
        ArgumentNullException.ThrowIfNull(btf);
        ArgumentNullException.ThrowIfNull(image);
        ArgumentNullException.ThrowIfNull(layouts);
        var agreeing = new List<string>();
        var disagreements = new List<KernelTypeDisagreement>();
        var missing = new List<string>();
        foreach (var layout in layouts)
        {
            if (!btf.TryFindComposite(layout.Name, out int id))
            {
                missing.Add(layout.Name);
                continue;
            }
            int before = disagreements.Count;
            void Differ(string? member, string what) =>
                disagreements.Add(new KernelTypeDisagreement(layout.Name, member, $"{layout.Name}{(member is null ? "" : "." + member)}: {what} ({image})"));
            long size = btf.SizeOf(id);
            if ((ulong)size != layout.Size)
                Differ(null, $"size {layout.Size}, but the kernel's is {size}");
            var members = new Dictionary<string, BtfField>(StringComparer.Ordinal);
            foreach (var f in btf.GetFlattenedMembers(id))
                members.TryAdd(f.Name, f);
            foreach (var f in layout.Fields)
            {
                if (!members.TryGetValue(f.Name, out var k))
                {
                    Differ(f.Name, "the kernel's has no such member");
                    continue;
                }
                if (f.BitSize > 0 || k.IsBitfield)
                {
                    if ((long)f.BitOffset != k.BitOffset || f.BitSize != k.BitSize)
                        Differ(f.Name, $"bits {f.BitOffset}+{f.BitSize}, but the kernel's are {k.BitOffset}+{k.BitSize}");
                    continue;
                }
                if ((long)f.Offset * 8 != k.BitOffset)
                    Differ(f.Name, $"offset {f.Offset}, but the kernel's is {k.Offset}");
                else if ((long)f.Size != k.Size)
                    Differ(f.Name, $"size {f.Size}, but the kernel's is {k.Size}");
            }
            if (disagreements.Count == before)
                agreeing.Add(layout.Name);
        }
        return new KernelTypeCheckResult(agreeing, disagreements, missing);
    }
}
