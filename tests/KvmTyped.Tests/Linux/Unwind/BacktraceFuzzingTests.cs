using System.Buffers.Binary;
using KvmTyped.Tools;
using KvmTyped.Tests.Formats;

namespace KvmTyped.Tests.Linux.Unwind;

/// <summary>The fuzzing entry points: seeds reach the code they are for, and random and mutated inputs end in a result
/// or one of the library's exceptions (caught by the entry point), never anything else.</summary>
public class BacktraceFuzzingTests
{
    private const ulong Code = 0xffffffff81000000;

    /// <summary>An ORC input: registers at code offset 0x10 and stack offset 0x100, an entry for the first function
    /// (call frame, return address at sp) and an end-of-stack entry for the second.</summary>
    private static byte[] OrcSeed()
    {
        var data = new byte[64 + 2 * 10 + 0x200];
        data[1] = 2;
        BinaryPrimitives.WriteUInt64LittleEndian(data.AsSpan(8), 0x100);
        BinaryPrimitives.WriteUInt64LittleEndian(data.AsSpan(16), 0x10);
        BinaryPrimitives.WriteInt16LittleEndian(data.AsSpan(64 + 2), 8);
        BinaryPrimitives.WriteUInt16LittleEndian(data.AsSpan(64 + 6), 5);            // sp_reg SP, CALL
        BinaryPrimitives.WriteUInt16LittleEndian(data.AsSpan(74), 0x100);
        BinaryPrimitives.WriteUInt16LittleEndian(data.AsSpan(74 + 6), 0x400);        // sp_reg UNDEFINED, end
        BinaryPrimitives.WriteUInt64LittleEndian(data.AsSpan(84 + 0x100), Code + 0x105);
        return data;
    }

    private static byte[] FramePointerSeed()
    {
        var data = new byte[32 + 0x400];
        BinaryPrimitives.WriteUInt64LittleEndian(data.AsSpan(8), 0x100);
        BinaryPrimitives.WriteUInt64LittleEndian(data.AsSpan(16), 0x10);
        BinaryPrimitives.WriteUInt64LittleEndian(data.AsSpan(24), 0xc1100200);
        BinaryPrimitives.WriteUInt32LittleEndian(data.AsSpan(32 + 0x204), 0xc7000055);
        return data;
    }

    /// <summary>An arm64 input: registers at code offset 0x10 and stack offset 0x100 (EL1h), x29 at a record whose
    /// return address carries a pointer authentication code and whose caller record is 0 (the end).</summary>
    private static byte[] Arm64Seed()
    {
        var data = new byte[64 + 0x400];
        BinaryPrimitives.WriteUInt64LittleEndian(data.AsSpan(8), 0x100);
        BinaryPrimitives.WriteUInt64LittleEndian(data.AsSpan(16), 0x10);
        BinaryPrimitives.WriteUInt64LittleEndian(data.AsSpan(24), 0xffff800008200200);
        BinaryPrimitives.WriteUInt64LittleEndian(data.AsSpan(40), 0x3c5);
        BinaryPrimitives.WriteUInt64LittleEndian(data.AsSpan(64 + 0x208), 0x5a93800008010155);
        return data;
    }

    private static byte[] EmptyModuleList()
    {
        var data = new byte[64];
        BinaryPrimitives.WriteUInt64LittleEndian(data, 0xffffffffc0000000);
        BinaryPrimitives.WriteUInt64LittleEndian(data.AsSpan(8), 0xffffffffc0000000);
        return data;
    }

    [Fact]
    public void Seeds_reach_the_code_they_are_for()
    {
        Assert.Equal(2, BacktraceFuzzing.UnwindOrc(OrcSeed(), FixtureTypes.Amd64));
        Assert.Equal(2, BacktraceFuzzing.UnwindFramePointers(FramePointerSeed(), FixtureTypes.I386));
        Assert.Equal(2, BacktraceFuzzing.UnwindArm64FramePointers(Arm64Seed(), FixtureTypes.Arm64));
        Assert.Equal(1, BacktraceFuzzing.RegisterNotes(CpuNotesTests.Note("CORE", 1, CpuNotesTests.PrStatusArm64(1))));
        Assert.Equal(0, BacktraceFuzzing.ModuleWalk(EmptyModuleList(), FixtureTypes.Amd64));
        Assert.Equal(1, BacktraceFuzzing.RegisterNotes(CpuNotesTests.Note("CORE", 1, CpuNotesTests.PrStatus64(1))));
        var table = new byte[16 + 3 * 4 + 3 * 6];
        BinaryPrimitives.WriteUInt32LittleEndian(table, 3);
        Assert.Equal(4, BacktraceFuzzing.OrcTableLookup(table, FixtureTypes.Amd64));
    }

    [Fact]
    public void Random_and_mutated_inputs_end_cleanly()
    {
        var random = new Random(1234);
        byte[][] seeds = [OrcSeed(), FramePointerSeed(), EmptyModuleList(), CpuNotesTests.Note("CORE", 1, CpuNotesTests.PrStatus64(1)), Arm64Seed()];
        var outcomes = new int[6, 2];
        for (var round = 0; round < 400; round++)
        {
            var input = round % 2 == 0 ? Mutate(seeds[round / 2 % seeds.Length], random) : RandomBytes(random);
            int[] results =
            [
                BacktraceFuzzing.UnwindOrc(input, FixtureTypes.Amd64),
                BacktraceFuzzing.UnwindFramePointers(input, round % 4 < 2 ? FixtureTypes.I386 : FixtureTypes.Amd64),
                BacktraceFuzzing.OrcTableLookup(input, FixtureTypes.Amd64),
                BacktraceFuzzing.ModuleWalk(input, round % 4 < 2 ? FixtureTypes.Amd64 : FixtureTypes.I386),
                BacktraceFuzzing.RegisterNotes(input),
                BacktraceFuzzing.UnwindArm64FramePointers(input, FixtureTypes.Arm64),
            ];
            for (var t = 0; t < results.Length; t++)
            {
                Assert.True(results[t] >= -1);
                outcomes[t, results[t] < 0 ? 0 : 1]++;
            }
        }
        // The unwinders always give a result (a damaged stack ends a trace, it throws nothing).
        Assert.Equal(0, outcomes[0, 0]);
        Assert.Equal(0, outcomes[1, 0]);
        Assert.Equal(0, outcomes[5, 0]);
    }

    private static byte[] RandomBytes(Random random)
    {
        var data = new byte[random.Next(0, 1 << 16)];
        random.NextBytes(data);
        return data;
    }

    private static byte[] Mutate(byte[] seed, Random random)
    {
        var data = (byte[])seed.Clone();
        for (var i = random.Next(1, 16); i > 0; i--)
            data[random.Next(data.Length)] = (byte)random.Next(256);
        return data;
    }
}
