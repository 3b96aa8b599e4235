using KvmTyped.Tools;
using KvmTyped.Tests.Formats;
using KvmTyped.TestSupport;

namespace KvmTyped.Tests.Linux.Unwind;

/// <summary>The fuzzing entry points: seeds reach the code they are for, and random and mutated inputs end in a result
/// or one of the library's exceptions (caught by the entry point), never anything else.</summary>
public class BacktraceFuzzingTests
{
    [Fact]
    public void Seeds_reach_the_code_they_are_for()
    {
        Assert.Equal(2, BacktraceFuzzing.UnwindOrc(BacktraceSeeds.Orc(), FixtureTypes.Amd64));
        Assert.Equal(2, BacktraceFuzzing.UnwindFramePointers(BacktraceSeeds.FramePointers(), FixtureTypes.I386));
        Assert.Equal(2, BacktraceFuzzing.UnwindArm64FramePointers(BacktraceSeeds.Arm64(), FixtureTypes.Arm64));
        Assert.Equal(1, BacktraceFuzzing.RegisterNotes(CpuNotesTests.Note("CORE", 1, CpuNotesTests.PrStatusArm64(1))));
        Assert.Equal(0, BacktraceFuzzing.ModuleWalk(BacktraceSeeds.EmptyModuleList(), FixtureTypes.Amd64));
        Assert.Equal(1, BacktraceFuzzing.ModuleWalk(BacktraceSeeds.OneModuleList(), FixtureTypes.Amd64));
        Assert.Equal(1, BacktraceFuzzing.RegisterNotes(CpuNotesTests.Note("CORE", 1, CpuNotesTests.PrStatus64(1))));
        Assert.Equal(4, BacktraceFuzzing.OrcTableLookup(BacktraceSeeds.OrcTable(), FixtureTypes.Amd64));
    }

    [Fact]
    public void Random_and_mutated_inputs_end_cleanly()
    {
        var random = new Random(1234);
        byte[][] seeds = [BacktraceSeeds.Orc(), BacktraceSeeds.FramePointers(), BacktraceSeeds.OneModuleList(), CpuNotesTests.Note("CORE", 1, CpuNotesTests.PrStatus64(1)), BacktraceSeeds.Arm64()];
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

    [Fact]
    public void A_real_cores_note_area_gives_each_cpus_registers()
    {
        // The QEMU dump: one NT_PRSTATUS per vCPU (QEMU's own notes beside them are not counted); the guest's CPUs are
        // counted by their ksoftirqd threads in the task list recorded inside it.
        var notes = BacktraceSeeds.NoteArea(Fixtures.Get("amd64/nokaslr/dump.elf.gz"));
        var cpus = System.Text.RegularExpressions.Regex.Matches(File.ReadAllText(Fixtures.Get("amd64/nokaslr/truth.json")), "\"ksoftirqd/[0-9]+\"")
            .Select(m => m.Value).Distinct().Count();
        Assert.True(cpus > 0);
        Assert.Equal(cpus, BacktraceFuzzing.RegisterNotes(notes));
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
