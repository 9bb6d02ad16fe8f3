using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace Forewarn.Server;

/// <summary>
/// Receiving a datagram with the time the kernel queued it (Linux SO_TIMESTAMPNS): a request's wait
/// starts when it reaches the host, not when a receiving thread gets round to it. Without it, the time
/// datagrams spend in the socket's receive buffer — the queue of an overloaded server, or of one whose
/// receiving threads cannot get a CPU — is invisible to the latency and queueing figures. Other systems,
/// or a kernel that refuses the option, receive with ReceiveFrom and time the request on receipt.
/// </summary>
internal static unsafe partial class KernelReceive
{
    private const int SolSocket = 1;
    // SO_TIMESTAMPNS (SO_TIMESTAMPNS_OLD) on x86-64 and arm64; the control message type is the same number.
    private const int SoTimestampNs = 35;
    private const int MsgTrunc = 0x20;
    private const int Eintr = 4, Eagain = 11;

    [StructLayout(LayoutKind.Sequential)]
    private struct IoVec
    {
        public void* Base;
        public nuint Length;
    }

    // struct msghdr, LP64 layout.
    [StructLayout(LayoutKind.Sequential)]
    private struct MsgHdr
    {
        public void* Name;
        public uint NameLength;
        public IoVec* Iov;
        public nuint IovLength;
        public void* Control;
        public nuint ControlLength;
        public int Flags;
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial nint recvmsg(nint socket, MsgHdr* message, int flags);

    /// <summary>Asks the kernel to timestamp arriving datagrams; false where that is not available (the caller uses ReceiveFrom).</summary>
    public static bool Enable(Socket socket)
    {
        if (!OperatingSystem.IsLinux() || IntPtr.Size != 8 || RuntimeInformation.ProcessArchitecture is not (Architecture.X64 or Architecture.Arm64))
            return false;
        try
        {
            socket.SetRawSocketOption(SolSocket, SoTimestampNs, BitConverter.GetBytes(1));
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    /// <summary>The outcome of one receive.</summary>
    public enum Result { Received, Truncated, TimedOut, Failed }

    /// <summary>
    /// One datagram into <paramref name="buffer"/>, its source into <paramref name="address"/>, and the
    /// kernel's arrival time as Unix nanoseconds (0 when the kernel gave none).
    /// </summary>
    public static Result Receive(Socket socket, Span<byte> buffer, SocketAddress address, out int length, out long arrivalUnixNanoseconds, out SocketError error)
    {
        length = 0;
        arrivalUnixNanoseconds = 0;
        error = SocketError.Success;
        // cmsghdr (16) + struct timespec (16), with room to spare for any other control message.
        byte* control = stackalloc byte[128];
        var name = address.Buffer.Span;
        fixed (byte* data = buffer)
        fixed (byte* sockaddr = name)
        {
            var iov = new IoVec { Base = data, Length = (nuint)buffer.Length };
            var message = new MsgHdr
            {
                Name = sockaddr,
                NameLength = (uint)name.Length,
                Iov = &iov,
                IovLength = 1,
                Control = control,
                ControlLength = 128,
            };
            nint received;
            bool added = false;
            var handle = socket.SafeHandle;
            try
            {
                handle.DangerousAddRef(ref added);
                do
                {
                    received = recvmsg(handle.DangerousGetHandle(), &message, 0);
                }
                while (received < 0 && Marshal.GetLastPInvokeError() == Eintr);
            }
            finally
            {
                if (added)
                    handle.DangerousRelease();
            }
            if (received < 0)
            {
                int errno = Marshal.GetLastPInvokeError();
                if (errno == Eagain)
                    return Result.TimedOut;
                error = (SocketError)errno;
                return Result.Failed;
            }
            // A socket shut down under a blocked receive returns with no source at all: not a datagram.
            if (message.NameLength < 2 || message.NameLength > name.Length)
            {
                error = SocketError.Shutdown;
                return Result.Failed;
            }
            address.Size = (int)message.NameLength;
            length = (int)received;
            arrivalUnixNanoseconds = Arrival(control, (long)message.ControlLength);
            return (message.Flags & MsgTrunc) != 0 ? Result.Truncated : Result.Received;
        }
    }

    /// <summary>Walks the control messages for SCM_TIMESTAMPNS.</summary>
    private static long Arrival(byte* control, long length)
    {
        long offset = 0;
        while (offset + 16 <= length)
        {
            long cmsgLength = *(long*)(control + offset);
            int level = *(int*)(control + offset + 8), type = *(int*)(control + offset + 12);
            if (cmsgLength < 16)
                break;
            if (level == SolSocket && type == SoTimestampNs && cmsgLength >= 32)
            {
                long seconds = *(long*)(control + offset + 16), nanoseconds = *(long*)(control + offset + 24);
                return seconds * 1_000_000_000 + nanoseconds;
            }
            offset += (cmsgLength + 7) & ~7L;
        }
        return 0;
    }

    private static readonly long UnixEpochTicks = DateTime.UnixEpoch.Ticks;

    /// <summary>
    /// A TimeProvider timestamp for a kernel arrival time: now, less the wall-clock age of the datagram
    /// (clamped to 0..10 s, so that a stepped clock cannot make a request look ancient or from the future).
    /// </summary>
    public static long ToTimestamp(long arrivalUnixNanoseconds, TimeProvider time)
    {
        long now = time.GetTimestamp();
        if (arrivalUnixNanoseconds <= 0)
            return now;
        long ageTicks = (DateTime.UtcNow.Ticks - UnixEpochTicks) - arrivalUnixNanoseconds / 100;
        ageTicks = Math.Clamp(ageTicks, 0, TimeSpan.TicksPerSecond * 10);
        return now - (long)(ageTicks * (time.TimestampFrequency / (double)TimeSpan.TicksPerSecond));
    }
}
