using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace Forewarn.Client.Net;

/// <summary>
/// The address a datagram was sent to, and the interface it came in on (IP_PKTINFO / IPV6_PKTINFO).
/// On a socket bound to the wildcard address it is the one the peer asked for: the answer leaves from
/// it (RFC 2865 clients match answers by source address) and advisories to that peer are signed with it.
/// </summary>
public readonly struct Destination(IPAddress address, int interfaceIndex)
{
    public IPAddress? Address { get; } = address;
    public int InterfaceIndex { get; } = interfaceIndex;
    public bool IsKnown => Address is not null;
}

/// <summary>
/// Datagrams with what the kernel knows about them (Linux, through recvmsg and sendmsg):
/// <list type="bullet">
/// <item>the time the kernel queued a datagram (SO_TIMESTAMPNS): a request's wait starts when it reaches
/// the host, not when a receiving thread gets round to it. Without it, the time datagrams spend in the
/// socket's receive buffer — the queue of an overloaded server, or of one whose receiving threads cannot
/// get a CPU — is invisible to the latency and queueing figures;</item>
/// <item>the address it was sent to (IP_PKTINFO), and sending from a chosen local address, so that a
/// socket on the wildcard address answers from the address each peer asked.</item>
/// </list>
/// Other systems, or a kernel that refuses the options, receive with ReceiveFrom, time the request on
/// receipt, and answer from the address the kernel chooses.
/// </summary>
public static unsafe partial class Datagrams
{
    private const int SolSocket = 1;
    // SO_TIMESTAMPNS (SO_TIMESTAMPNS_OLD) on x86-64 and arm64; the control message type is the same number.
    private const int SoTimestampNs = 35;
    private const int IpProtoIp = 0, IpPktInfo = 8;
    private const int IpProtoIpv6 = 41, Ipv6RecvPktInfo = 49, Ipv6PktInfo = 50;
    private const int MsgTrunc = 0x20;
    private const int Eintr = 4, Eagain = 11, Eshutdown = 108;
    private const int ControlSize = 128;

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

    [LibraryImport("libc", SetLastError = true)]
    private static partial nint sendmsg(nint socket, MsgHdr* message, int flags);

    /// <summary>recvmsg or sendmsg on the socket's descriptor, kept alive for the call, retried when interrupted.</summary>
    private static nint Call(Socket socket, MsgHdr* message, bool send)
    {
        nint result;
        bool added = false;
        var handle = socket.SafeHandle;
        try
        {
            handle.DangerousAddRef(ref added);
            do
            {
                result = send ? sendmsg(handle.DangerousGetHandle(), message, 0) : recvmsg(handle.DangerousGetHandle(), message, 0);
            }
            while (result < 0 && Marshal.GetLastPInvokeError() == Eintr);
        }
        finally
        {
            if (added)
                handle.DangerousRelease();
        }
        return result;
    }

    /// <summary>Where recvmsg and sendmsg with these layouts are available: Linux on a 64-bit x86 or Arm.</summary>
    public static bool Supported { get; } = OperatingSystem.IsLinux() && IntPtr.Size == 8
        && RuntimeInformation.ProcessArchitecture is Architecture.X64 or Architecture.Arm64;

    /// <summary>Asks the kernel to timestamp arriving datagrams; false where that is not available (the caller uses ReceiveFrom).</summary>
    public static bool EnableTimestamps(Socket socket) => TrySet(socket, SolSocket, SoTimestampNs);

    /// <summary>Asks the kernel to say where each datagram was sent to; false where that is not available.</summary>
    public static bool EnablePacketInfo(Socket socket) => socket.AddressFamily == AddressFamily.InterNetwork
        ? TrySet(socket, IpProtoIp, IpPktInfo)
        : TrySet(socket, IpProtoIpv6, Ipv6RecvPktInfo);

    /// <summary>True when the socket is bound to 0.0.0.0 or ::, where the answer's source must be chosen per datagram.</summary>
    public static bool IsWildcard(Socket socket) =>
        socket.LocalEndPoint is IPEndPoint local && (local.Address.Equals(IPAddress.Any) || local.Address.Equals(IPAddress.IPv6Any));

    private static bool TrySet(Socket socket, int level, int option)
    {
        if (!Supported)
            return false;
        try
        {
            socket.SetRawSocketOption(level, option, BitConverter.GetBytes(1));
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
    /// One datagram into <paramref name="buffer"/>, its source into <paramref name="address"/>, the
    /// kernel's arrival time as Unix nanoseconds (0 when the kernel gave none), and where it was sent
    /// (raw: 16 octets of address, family and interface; see <see cref="DestinationOf"/>), when enabled.
    /// </summary>
    public static Result Receive(Socket socket, Span<byte> buffer, SocketAddress address, out int length, out long arrivalUnixNanoseconds, out RawDestination destination, out int errno)
    {
        length = 0;
        arrivalUnixNanoseconds = 0;
        destination = default;
        errno = 0;
        // cmsghdr (16) + struct timespec (16), cmsghdr + in6_pktinfo (24), with room to spare.
        byte* control = stackalloc byte[ControlSize];
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
                ControlLength = ControlSize,
            };
            nint received = Call(socket, &message, send: false);
            if (received < 0)
            {
                errno = Marshal.GetLastPInvokeError();
                return errno == Eagain ? Result.TimedOut : Result.Failed;
            }
            // A socket shut down under a blocked receive returns with no source at all: not a datagram.
            if (message.NameLength < 2 || message.NameLength > name.Length)
            {
                errno = Eshutdown;
                return Result.Failed;
            }
            address.Size = (int)message.NameLength;
            length = (int)received;
            ReadControl(control, (long)message.ControlLength, out arrivalUnixNanoseconds, out destination);
            return (message.Flags & MsgTrunc) != 0 ? Result.Truncated : Result.Received;
        }
    }

    /// <summary>A datagram's destination as the kernel gave it: no allocation on the receive path.</summary>
    public readonly struct RawDestination(UInt128 address, int interfaceIndex, AddressFamily family)
    {
        /// <summary>The address octets in network order, IPv4 in the first four.</summary>
        public UInt128 Address { get; } = address;
        public int InterfaceIndex { get; } = interfaceIndex;
        public AddressFamily Family { get; } = family;
        public bool IsKnown => Family != AddressFamily.Unspecified;
    }

    /// <summary>An <see cref="IPAddress"/> for a raw destination, from (and into) a cache the caller keeps per thread.</summary>
    public static Destination DestinationOf(in RawDestination raw, Dictionary<UInt128, IPAddress> cache)
    {
        if (!raw.IsKnown)
            return default;
        if (!cache.TryGetValue(raw.Address, out var address))
        {
            Span<byte> octets = stackalloc byte[16];
            var value = raw.Address;
            MemoryMarshal.Write(octets, in value);
            address = raw.Family == AddressFamily.InterNetwork ? new IPAddress(octets[..4]) : new IPAddress(octets);
            if (cache.Count >= 4096)
                cache.Clear();
            cache[raw.Address] = address;
        }
        return new Destination(address, raw.InterfaceIndex);
    }

    /// <summary>Walks the control messages for SCM_TIMESTAMPNS and IP_PKTINFO / IPV6_PKTINFO.</summary>
    private static void ReadControl(byte* control, long length, out long arrival, out RawDestination destination)
    {
        arrival = 0;
        destination = default;
        long offset = 0;
        while (offset + 16 <= length)
        {
            long cmsgLength = *(long*)(control + offset);
            int level = *(int*)(control + offset + 8), type = *(int*)(control + offset + 12);
            if (cmsgLength < 16 || offset + cmsgLength > length)
                break;
            byte* data = control + offset + 16;
            if (level == SolSocket && type == SoTimestampNs && cmsgLength >= 32)
            {
                long seconds = *(long*)data, nanoseconds = *(long*)(data + 8);
                arrival = seconds * 1_000_000_000 + nanoseconds;
            }
            else if (level == IpProtoIp && type == IpPktInfo && cmsgLength >= 16 + 12)
            {
                // struct in_pktinfo { int ipi_ifindex; in_addr ipi_spec_dst; in_addr ipi_addr; }: ipi_addr is the header's destination.
                destination = new RawDestination(*(uint*)(data + 8), *(int*)data, AddressFamily.InterNetwork);
            }
            else if (level == IpProtoIpv6 && type == Ipv6PktInfo && cmsgLength >= 16 + 20)
            {
                // struct in6_pktinfo { in6_addr ipi6_addr; unsigned ipi6_ifindex; }
                destination = new RawDestination(*(UInt128*)data, *(int*)(data + 16), AddressFamily.InterNetworkV6);
            }
            offset += (cmsgLength + 7) & ~7L;
        }
    }

    /// <summary>
    /// Sends one datagram to <paramref name="target"/> from the local address <paramref name="from"/>
    /// (IP_PKTINFO's ipi_spec_dst, or IPV6_PKTINFO), on a socket bound to the wildcard address.
    /// Returns 0, or the errno (<see cref="Marshal.GetPInvokeErrorMessage"/> says what it means).
    /// </summary>
    public static int SendFrom(Socket socket, ReadOnlySpan<byte> datagram, SocketAddress target, in Destination from)
    {
        const int Einval = 22;
        if (!Supported || from.Address is not { } source)
            return Einval;
        byte* control = stackalloc byte[64];
        new Span<byte>(control, 64).Clear();
        long controlLength;
        if (source.AddressFamily == AddressFamily.InterNetwork)
        {
            *(long*)control = 16 + 12;
            *(int*)(control + 8) = IpProtoIp;
            *(int*)(control + 12) = IpPktInfo;
            // ipi_ifindex 0: the route decides the interface; ipi_spec_dst is the source address.
            source.TryWriteBytes(new Span<byte>(control + 16 + 4, 4), out _);
            controlLength = 32;
        }
        else
        {
            *(long*)control = 16 + 20;
            *(int*)(control + 8) = IpProtoIpv6;
            *(int*)(control + 12) = Ipv6PktInfo;
            source.TryWriteBytes(new Span<byte>(control + 16, 16), out _);
            *(int*)(control + 16 + 16) = from.InterfaceIndex;
            controlLength = 40;
        }
        var name = target.Buffer.Span[..target.Size];
        fixed (byte* data = datagram)
        fixed (byte* sockaddr = name)
        {
            var iov = new IoVec { Base = data, Length = (nuint)datagram.Length };
            var message = new MsgHdr
            {
                Name = sockaddr,
                NameLength = (uint)name.Length,
                Iov = &iov,
                IovLength = 1,
                Control = control,
                ControlLength = (nuint)controlLength,
            };
            nint sent = Call(socket, &message, send: true);
            return sent < 0 ? Marshal.GetLastPInvokeError() : 0;
        }
    }

    private static readonly long UnixEpochTicks = DateTime.UnixEpoch.Ticks;

    /// <summary>
    /// A TimeProvider timestamp for a kernel arrival time: now, less the wall-clock age of the datagram.
    /// An age outside 0..10 s is not a wait but a step of the wall clock between the kernel's stamp and
    /// this read (or clocks that disagree): the datagram counts as just arrived rather than as ancient,
    /// so that one step cannot fill the latency window with ten-second requests.
    /// </summary>
    public static long ToTimestamp(long arrivalUnixNanoseconds, TimeProvider time)
    {
        long now = time.GetTimestamp();
        if (arrivalUnixNanoseconds <= 0)
            return now;
        long ageTicks = (DateTime.UtcNow.Ticks - UnixEpochTicks) - arrivalUnixNanoseconds / 100;
        if (ageTicks is < 0 or > TimeSpan.TicksPerSecond * 10)
            return now;
        return now - (long)(ageTicks * (time.TimestampFrequency / (double)TimeSpan.TicksPerSecond));
    }
}
