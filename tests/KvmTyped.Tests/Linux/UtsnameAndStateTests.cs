using System.Text;
using KvmTyped.Linux;

namespace KvmTyped.Tests.Linux;

public class UtsnameAndStateTests
{
    [Fact]
    public void Utsname_fields_are_65_byte_nul_padded_arrays()
    {
        var raw = new byte[390];
        string[] fields = ["Linux", "host", "6.1.0-56-amd64", "#1 SMP PREEMPT_DYNAMIC Debian 6.1.192-2 (2026-11-16)", "x86_64", new string('d', 65)];
        for (var i = 0; i < 6; i++)
            Encoding.ASCII.GetBytes(fields[i]).CopyTo(raw, i * 65);
        var u = Utsname.Parse(raw);
        Assert.Equal(new Utsname("Linux", "host", "6.1.0-56-amd64", "#1 SMP PREEMPT_DYNAMIC Debian 6.1.192-2 (2026-11-16)", "x86_64", new string('d', 65)), u);
        Assert.Equal("Linux host 6.1.0-56-amd64 #1 SMP PREEMPT_DYNAMIC Debian 6.1.192-2 (2026-11-16) x86_64", u.ToString());
        Assert.Throws<ArgumentException>(() => Utsname.Parse(raw.AsSpan(0, 389)));
    }

    [Theory]
    [InlineData(0x0UL, 0x0UL, 'R')]
    [InlineData(0x1UL, 0x0UL, 'S')]
    [InlineData(0x2UL, 0x0UL, 'D')]
    [InlineData(0x102UL, 0x0UL, 'D')] // TASK_KILLABLE
    [InlineData(0x4UL, 0x0UL, 'T')]
    [InlineData(0x8UL, 0x0UL, 't')]
    [InlineData(0x0UL, 0x10UL, 'X')]
    [InlineData(0x0UL, 0x20UL, 'Z')]
    [InlineData(0x1UL, 0x20UL, 'Z')] // exit_state wins over a stale interruptible bit: the highest reportable bit
    [InlineData(0x40UL, 0x0UL, 'P')]
    [InlineData(0x402UL, 0x0UL, 'I')] // TASK_IDLE
    [InlineData(0x1000UL, 0x0UL, 'D')] // TASK_RTLOCK_WAIT shows as D
    [InlineData(0x200UL, 0x0UL, 'R')] // TASK_WAKING alone: nothing reportable
    [InlineData(0x2402UL, 0x0UL, 'I')] // TASK_IDLE | TASK_FREEZABLE: still idle
    [InlineData(0x502UL, 0x0UL, 'I')] // TASK_IDLE | TASK_WAKEKILL
    [InlineData(0x8000UL, 0x0UL, 'D')] // TASK_FROZEN shows as D
    [InlineData(0x8001UL, 0x0UL, 'D')]
    [InlineData(0x1402UL, 0x0UL, 'D')] // an rt-lock wait wins over idle
    [InlineData(0x1001UL, 0x0UL, 'D')] // TASK_RTLOCK_WAIT with other bits
    public void State_letters_are_proc_s(ulong state, ulong exitState, char letter) =>
        Assert.Equal(letter, KernelTasks.StateLetter(state, exitState));
}
