using System.Buffers.Binary;
using System.Text;

namespace KvmTyped.Formats;

/// <summary>A note of an ELF note area (Elf_Nhdr, then the name and the descriptor, each padded to 4 bytes).</summary>
/// <param name="Name">The owner's name ("CORE", "VMCOREINFO", …), without its NUL.</param>
/// <param name="Type">n_type (NT_PRSTATUS = 1 for "CORE" …).</param>
/// <param name="DescOffset">Where the descriptor starts: in the file for an ELF core's notes, in the note area given
/// otherwise.</param>
/// <param name="DescSize">The descriptor's length.</param>
internal readonly record struct ElfNote(string Name, uint Type, long DescOffset, int DescSize);

/// <summary>Reads ELF note areas: the PT_NOTE segments of an ELF core and the note area of a kdump-compressed file
/// (the kernel's crash notes, copied by makedumpfile) share this one reader.</summary>
internal static class ElfNotes
{
    /// <summary>The largest name or descriptor accepted.</summary>
    public const int MaxNoteSize = 64 << 20;

    /// <summary>The notes of <paramref name="area"/>. Zero padding at the end (as QEMU and kdump leave it) ends the
    /// area. A note that overruns it, or claims an absurd size, is a <see cref="KvmFormatException"/> naming
    /// <paramref name="path"/> and the offset when <paramref name="strict"/>; otherwise the notes before it are
    /// returned.</summary>
    /// <param name="area">The bytes of the note area.</param>
    /// <param name="bigEndian">The byte order of the headers.</param>
    /// <param name="path">The file, for messages.</param>
    /// <param name="baseOffset">Where <paramref name="area"/> lies in the file: added to every DescOffset.</param>
    /// <param name="strict">Refuse a damaged note instead of stopping before it.</param>
    public static List<ElfNote> Parse(ReadOnlySpan<byte> area, bool bigEndian, string path, long baseOffset, bool strict)
    {
        var notes = new List<ElfNote>();
        long pos = 0;
        while (area.Length - pos >= 12)
        {
            var header = area.Slice((int)pos, 12);
            var namesz = bigEndian ? BinaryPrimitives.ReadUInt32BigEndian(header) : BinaryPrimitives.ReadUInt32LittleEndian(header);
            var descsz = bigEndian ? BinaryPrimitives.ReadUInt32BigEndian(header[4..]) : BinaryPrimitives.ReadUInt32LittleEndian(header[4..]);
            var type = bigEndian ? BinaryPrimitives.ReadUInt32BigEndian(header[8..]) : BinaryPrimitives.ReadUInt32LittleEndian(header[8..]);
            if (namesz == 0 && descsz == 0 && type == 0)
                break;
            if (namesz > MaxNoteSize || descsz > MaxNoteSize)
            {
                if (strict)
                    throw new KvmFormatException(path, baseOffset + pos, $"note size (name {namesz}, desc {descsz}) is absurd");
                break;
            }
            var nameAt = pos + 12;
            var descAt = nameAt + Align4(namesz);
            var next = descAt + Align4(descsz);
            if (descAt + descsz > area.Length || (strict && next > area.Length))
            {
                if (strict)
                    throw new KvmFormatException(path, baseOffset + pos, $"note (name {namesz} bytes, desc {descsz} bytes) overruns its note area");
                break;
            }
            var name = area.Slice((int)nameAt, (int)namesz);
            var nul = name.IndexOf((byte)0);
            notes.Add(new ElfNote(Encoding.ASCII.GetString(nul >= 0 ? name[..nul] : name), type, baseOffset + descAt, (int)descsz));
            pos = next;
        }
        return notes;
    }

    private static long Align4(uint n) => ((long)n + 3) & ~3L;
}
