using KvmTyped.Translation;

namespace KvmTyped.Tests.Translation;

/// <summary>Page tables full of random bytes (a damaged or hostile dump): every walk ends, with an answer or a
/// "cannot translate" reason, after at most one read per level, and never throws.</summary>
public class CorruptTablesTests
{
    [Fact]
    public void Random_tables_never_throw_and_stay_bounded()
    {
        var random = new Random(7);
        var memory = new SparsePhysicalMemory();
        // 256 pages of noise at 0..1 MiB; frames in entries mostly point outside them, some inside.
        for (ulong page = 0; page < 256; page++)
        {
            var bytes = memory.Page(page << 12);
            random.NextBytes(bytes);
            for (var i = 0; i < bytes.Length; i += 8)
            {
                if (random.Next(3) == 0)
                    BitConverter.TryWriteBytes(bytes.AsSpan(i), ((ulong)(uint)random.Next(256) << 12) | (uint)random.Next(0x1000));
            }
        }
        var spaces = new (IAddressSpace Space, int Levels)[]
        {
            (new X86_64PageTables(memory, 0x1000, 4), 4),
            (new X86_64PageTables(memory, 0x2000, 5), 5),
            (new X86_64PageTables(memory, 0x3000, 4, smeMask: 1UL << 47, physicalAddressBits: 46), 4),
            (new X86PaeTables(memory, 0x4000), 3),
            (new X86NonPaeTables(memory, 0x5000), 2),
        };
        var answered = 0;
        var refused = 0;
        foreach (var (space, levels) in spaces)
        {
            for (var i = 0; i < 20000; i++)
            {
                var va = (ulong)random.NextInt64();
                if (levels <= 3)
                    va &= uint.MaxValue;
                else if (random.Next(2) == 0)
                    va |= 0xffff_8000_0000_0000UL;
                else
                    va &= 0x0000_7fff_ffff_ffffUL;
                var before = memory.Reads;
                if (space.TryTranslate(va, out _, out var run, out var failure))
                {
                    Assert.True(run >= 1);
                    answered++;
                }
                else
                {
                    Assert.StartsWith($"cannot translate 0x{va:x}: ", failure);
                    refused++;
                }
                Assert.InRange(memory.Reads - before, 0, levels);
            }
        }
        Assert.True(answered > 0 && refused > 0, $"{answered} answered, {refused} refused");
    }
}
