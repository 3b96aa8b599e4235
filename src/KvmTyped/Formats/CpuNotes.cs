using System.Buffers.Binary;
using KvmTyped.Formats.Elf;
using KvmTyped.Formats.Kdump;

namespace KvmTyped.Formats;

/// <summary>How an NT_PRSTATUS descriptor lays out its registers (struct elf_prstatus of the dumped kernel's
/// architecture, include/uapi/linux/elfcore.h with the architecture's elf_gregset_t).</summary>
internal enum PrStatusLayout
{
    /// <summary>x86-64: 336 bytes, pr_pid at 32, 27 eight-byte registers (struct user_regs_struct) at 112.</summary>
    X86_64,

    /// <summary>i386: 144 bytes, pr_pid at 24, 17 four-byte registers (struct user_regs_struct) at 72.</summary>
    I386,

    /// <summary>arm64: 392 bytes, pr_pid at 32, 34 eight-byte registers (struct user_pt_regs: x0..x30, sp, pc, pstate)
    /// at 112.</summary>
    Arm64,
}

/// <summary>One NT_PRSTATUS note: the registers a dump recorded for one CPU, in the order of
/// <see cref="Names"/> (the members of the kernel's struct pt_regs that user_regs_struct mirrors).</summary>
/// <param name="Index">The note's position among the dump's NT_PRSTATUS notes, from 0.</param>
/// <param name="Pid">pr_pid: in a kdump the pid of the task the CPU ran (crash_save_cpu writes current->pid); QEMU
/// writes the vCPU's index + 1 there.</param>
/// <param name="Signal">pr_cursig.</param>
/// <param name="Layout">The descriptor's layout.</param>
/// <param name="Values">The registers, zero-extended to 64 bits.</param>
internal sealed record PrStatus(int Index, int Pid, int Signal, PrStatusLayout Layout, ulong[] Values)
{
    /// <summary>Size of an x86-64 elf_prstatus.</summary>
    public const int X86_64Size = 336;

    /// <summary>Size of an i386 elf_prstatus.</summary>
    public const int I386Size = 144;

    /// <summary>Size of an arm64 elf_prstatus.</summary>
    public const int Arm64Size = 392;

    private static readonly string[] X86_64Names =
    [
        "r15", "r14", "r13", "r12", "bp", "bx", "r11", "r10", "r9", "r8", "ax", "cx", "dx", "si", "di", "orig_ax",
        "ip", "cs", "flags", "sp", "ss", "fs_base", "gs_base", "ds", "es", "fs", "gs",
    ];

    private static readonly string[] I386Names =
        ["bx", "cx", "dx", "si", "di", "bp", "ax", "ds", "es", "fs", "gs", "orig_ax", "ip", "cs", "flags", "sp", "ss"];

    private static readonly string[] Arm64Names = [.. Enumerable.Range(0, 31).Select(i => "x" + i.ToString(System.Globalization.CultureInfo.InvariantCulture)), "sp", "pc", "pstate"];

    /// <summary>The register names of <see cref="Values"/>, as the kernel's struct pt_regs calls them (arm64: x0..x30
    /// for regs[0..30], then sp, pc, pstate).</summary>
    public IReadOnlyList<string> Names => NamesOf(Layout);

    private static string[] NamesOf(PrStatusLayout layout) => layout switch
    {
        PrStatusLayout.X86_64 => X86_64Names,
        PrStatusLayout.I386 => I386Names,
        _ => Arm64Names,
    };

    /// <summary>A register by its pt_regs name ("ip", "sp", "bp", …).</summary>
    public ulong this[string name]
    {
        get
        {
            var i = Array.IndexOf(NamesOf(Layout), name);
            return i >= 0 ? Values[i] : throw new KeyNotFoundException($"an {Layout} elf_prstatus has no register {name}");
        }
    }

    /// <summary>Decodes one NT_PRSTATUS descriptor; null when its size is not one of the layouts known here (another
    /// architecture's).</summary>
    public static PrStatus? Decode(ReadOnlySpan<byte> desc, int index)
    {
        switch (desc.Length)
        {
            case X86_64Size:
            {
                var values = new ulong[X86_64Names.Length];
                for (var i = 0; i < values.Length; i++)
                    values[i] = BinaryPrimitives.ReadUInt64LittleEndian(desc[(112 + 8 * i)..]);
                return new PrStatus(index, BinaryPrimitives.ReadInt32LittleEndian(desc[32..]), BinaryPrimitives.ReadInt16LittleEndian(desc[12..]), PrStatusLayout.X86_64, values);
            }
            case I386Size:
            {
                var values = new ulong[I386Names.Length];
                for (var i = 0; i < values.Length; i++)
                    values[i] = BinaryPrimitives.ReadUInt32LittleEndian(desc[(72 + 4 * i)..]);
                return new PrStatus(index, BinaryPrimitives.ReadInt32LittleEndian(desc[24..]), BinaryPrimitives.ReadInt16LittleEndian(desc[12..]), PrStatusLayout.I386, values);
            }
            case Arm64Size:
            {
                var values = new ulong[Arm64Names.Length];
                for (var i = 0; i < values.Length; i++)
                    values[i] = BinaryPrimitives.ReadUInt64LittleEndian(desc[(112 + 8 * i)..]);
                return new PrStatus(index, BinaryPrimitives.ReadInt32LittleEndian(desc[32..]), BinaryPrimitives.ReadInt16LittleEndian(desc[12..]), PrStatusLayout.Arm64, values);
            }
            default:
                return null;
        }
    }
}

/// <summary>The register notes of a dump: every NT_PRSTATUS ("CORE", type 1) in order, and whether QEMU wrote them
/// (then pr_pid is the vCPU index + 1, not a Linux pid). QEMU's x86 dumps carry a "QEMU" CPU-state note per vCPU; its
/// arm64 dumps carry none, but an NT_PRFPREG ("CORE", type 2) per vCPU, which the kernel's own crash notes
/// (crash_save_cpu: one NT_PRSTATUS per CPU) never hold.</summary>
/// <param name="Notes">The decoded notes, in the dump's order.</param>
/// <param name="FromQemu">A "QEMU" note or an NT_PRFPREG note is present.</param>
/// <param name="Skipped">NT_PRSTATUS notes of a layout not known here (another architecture).</param>
internal sealed record CpuNotes(IReadOnlyList<PrStatus> Notes, bool FromQemu, int Skipped)
{
    /// <summary>The most NT_PRSTATUS notes taken (NR_CPUS of the largest configurations).</summary>
    public const int MaxNotes = 8192;

    /// <summary>No notes.</summary>
    public static CpuNotes None { get; } = new([], false, 0);

    /// <summary>The register notes of a corefile: an ELF core's PT_NOTE segments, or the note area a kdump-compressed
    /// file's sub-header points to (copied by makedumpfile from /proc/vmcore, or written by QEMU).</summary>
    /// <exception cref="KvmFormatException">A note area is damaged, or holds more than <see cref="MaxNotes"/> notes.</exception>
    public static CpuNotes Read(IPhysicalMemory core)
    {
        ArgumentNullException.ThrowIfNull(core);
        switch (core)
        {
            case SectionedPhysicalMemory sectioned:
                return Read(sectioned.Core);
            case ElfCoreMemory elf:
            {
                var image = elf.Image;
                var notes = image.ReadNotes();
                return Collect(notes, n => image.File.Unchecked(n.DescOffset, n.DescSize), image.File.Path);
            }
            case KdumpFile kdump:
                return Parse(kdump.NoteBytes.Span, kdump.Header.IsBigEndian, kdump.Path);
            default:
                return None;
        }
    }

    /// <summary>The register notes of a note area (the bytes of a PT_NOTE segment or a kdump file's note area). A
    /// damaged note ends the area: the notes before it are kept, as readers of kdump note areas do.</summary>
    /// <exception cref="KvmFormatException">More than <see cref="MaxNotes"/> register notes.</exception>
    public static CpuNotes Parse(ReadOnlySpan<byte> area, bool bigEndian, string path)
    {
        var notes = ElfNotes.Parse(area, bigEndian, path, 0, strict: false);
        var copy = area.ToArray();
        return Collect(notes, n => copy.AsSpan((int)n.DescOffset, n.DescSize), path);
    }

    /// <summary>NT_PRFPREG: a CPU's floating-point registers.</summary>
    private const uint NtPrFpReg = 2;

    private delegate ReadOnlySpan<byte> Descriptor(ElfNote note);

    private static CpuNotes Collect(List<ElfNote> notes, Descriptor descriptor, string path)
    {
        var result = new List<PrStatus>();
        var qemu = false;
        var skipped = 0;
        foreach (var note in notes)
        {
            if (note.Name == "QEMU" || (note.Name == "CORE" && note.Type == NtPrFpReg))
                qemu = true;
            if (note.Name != "CORE" || note.Type != 1)
                continue;
            if (result.Count + skipped >= MaxNotes)
                throw new KvmFormatException(path, note.DescOffset, $"more than {MaxNotes} NT_PRSTATUS notes");
            if (PrStatus.Decode(descriptor(note), result.Count + skipped) is { } status)
                result.Add(status);
            else
                skipped++;
        }
        return new CpuNotes(result, qemu, skipped);
    }
}
