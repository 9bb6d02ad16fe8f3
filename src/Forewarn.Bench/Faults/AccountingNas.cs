using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Forewarn.Protocol.Radius;

namespace Forewarn.Bench.Faults;

/// <summary>One accounting record as the NAS knows it: which session, which event, and whether the server has acknowledged it.</summary>
public sealed class NasRecord(string sessionId, AcctStatusType status)
{
    public string SessionId { get; } = sessionId;
    public AcctStatusType Status { get; } = status;
    public string Key => $"{SessionId}/{(uint)Status}";
    internal long FirstSent;
    internal long LastSent;
    internal int Sends;
    internal int Identifier = -1;
    internal readonly byte[] RequestAuthenticator = new byte[16];
    public bool Acknowledged { get; internal set; }
}

/// <summary>
/// A NAS that keeps its accounting the way RFC 2866 asks (§2 and the Acct-Delay-Time attribute): every
/// record is sent until it is acknowledged, however long the server is away; each retransmission
/// carries the seconds it has waited in Acct-Delay-Time (so it is a new packet: a new Identifier and
/// authenticator), and is the same event, which the server's dedup must recognise. Records are
/// Start, Interim-Update and Stop of numbered sessions. One UDP socket from its own address; a thread
/// blocked in receive; <see cref="Tick"/> (called by the runner) retransmits and issues new records.
/// </summary>
public sealed class AccountingNas : IDisposable
{
    private readonly Socket _socket;
    private readonly byte[] _secret;
    private readonly int _window;
    private readonly string _prefix;
    private readonly byte[] _address;
    private readonly long _retransmitTicks;
    private readonly Lock _lock = new();
    private readonly NasRecord?[] _byIdentifier = new NasRecord?[256];
    private readonly List<NasRecord> _pending = [];
    private readonly List<NasRecord> _all = [];
    private readonly byte[] _buffer = new byte[RadiusPacket.MaxLength];
    private readonly Thread _receiver;
    private volatile bool _running = true;
    private int _nextIdentifier;
    private int _session;
    private int _step;
    private long _acked;
    private long _retransmissions;
    private long _firstAckSinceMark;

    public AccountingNas(IPAddress address, IPEndPoint server, string secret, int window, string runId, int index, TimeSpan retransmitAfter)
    {
        if (window is < 1 or > 200)
            throw new ArgumentOutOfRangeException(nameof(window), "A NAS keeps between 1 and 200 records in flight (256 identifiers).");
        _secret = Encoding.UTF8.GetBytes(secret);
        _window = window;
        _prefix = $"{runId}-{index:x3}-";
        _address = address.GetAddressBytes();
        _retransmitTicks = (long)(retransmitAfter.TotalSeconds * Stopwatch.Frequency);
        _socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp) { ReceiveTimeout = 100 };
        _socket.Bind(new IPEndPoint(address, 0));
        _socket.Connect(server);
        _receiver = new Thread(Receive) { IsBackground = true, Name = $"nas-{index}" };
        _receiver.Start();
    }

    /// <summary>Every record this NAS has issued, acknowledged or not.</summary>
    public IReadOnlyList<NasRecord> Records { get { lock (_lock) return [.. _all]; } }
    public int Pending { get { lock (_lock) return _pending.Count; } }
    public long Acknowledged => Interlocked.Read(ref _acked);
    public long Retransmissions => Interlocked.Read(ref _retransmissions);
    /// <summary>Stopwatch timestamp of the first acknowledgement since <see cref="Mark"/> (0: none yet).</summary>
    public long FirstAcknowledgedSinceMark => Interlocked.Read(ref _firstAckSinceMark);

    /// <summary>Starts a new span for <see cref="FirstAcknowledgedSinceMark"/> (the runner calls it before each start of the server).</summary>
    public void Mark() => Interlocked.Exchange(ref _firstAckSinceMark, 0);

    /// <summary>Retransmits what has waited too long; then issues up to <paramref name="budget"/> new records while the window has room. Returns how many were issued.</summary>
    public int Tick(long now, int budget)
    {
        lock (_lock)
        {
            foreach (var record in _pending)
            {
                if (now - record.LastSent >= _retransmitTicks)
                {
                    Send(record, now);
                    Interlocked.Increment(ref _retransmissions);
                }
            }
            int issued = 0;
            while (issued < budget && _pending.Count < _window)
            {
                var record = Next();
                _pending.Add(record);
                _all.Add(record);
                Send(record, now);
                issued++;
            }
            return issued;
        }
    }

    private NasRecord Next()
    {
        if (_step == 0)
            _session++;
        var status = _step switch { 0 => AcctStatusType.Start, 1 => AcctStatusType.InterimUpdate, _ => AcctStatusType.Stop };
        _step = (_step + 1) % 3;
        return new NasRecord($"{_prefix}{_session:x6}", status);
    }

    private void Send(NasRecord record, long now)
    {
        if (record.Identifier >= 0)
            _byIdentifier[record.Identifier] = null;
        int identifier = FreeIdentifier();
        if (record.Sends == 0)
            record.FirstSent = now;
        uint delay = (uint)((now - record.FirstSent) / Stopwatch.Frequency);
        var writer = new RadiusWriter(_buffer, RadiusCode.AccountingRequest, (byte)identifier, stackalloc byte[16]);
        writer.Add(AttributeTypes.UserName, "u"u8);
        writer.AddUInt32(AttributeTypes.AcctStatusType, (uint)record.Status);
        writer.Add(AttributeTypes.AcctSessionId, Encoding.ASCII.GetBytes(record.SessionId));
        if (record.Status != AcctStatusType.Start)
        {
            uint seconds = record.Status == AcctStatusType.Stop ? 120u : 60u;
            writer.AddUInt32(AttributeTypes.AcctSessionTime, seconds);
            writer.AddUInt32(AttributeTypes.AcctInputOctets, seconds * 1500);
            writer.AddUInt32(AttributeTypes.AcctOutputOctets, seconds * 9000);
        }
        if (record.Status == AcctStatusType.Stop)
            writer.AddUInt32(AttributeTypes.AcctTerminateCause, 1);
        if (record.Sends > 0)
            writer.AddUInt32(AttributeTypes.AcctDelayTime, delay);
        writer.Add(AttributeTypes.NasIpAddress, _address);
        int length = writer.Complete(_secret);
        _buffer.AsSpan(RadiusPacket.AuthenticatorOffset, 16).CopyTo(record.RequestAuthenticator);
        record.Identifier = identifier;
        record.LastSent = now;
        record.Sends++;
        _byIdentifier[identifier] = record;
        try
        {
            _socket.Send(_buffer.AsSpan(0, length));
        }
        catch (SocketException)
        {
            // The server's port is closed (it is down): ICMP unreachable. The record waits for its retransmission.
        }
    }

    private int FreeIdentifier()
    {
        for (int i = 0; i < 256; i++)
        {
            int candidate = (_nextIdentifier + i) & 0xFF;
            if (_byIdentifier[candidate] is null)
            {
                _nextIdentifier = candidate + 1;
                return candidate;
            }
        }
        throw new InvalidOperationException("no free identifier (the window is at most 200)");
    }

    private void Receive()
    {
        var answer = new byte[RadiusPacket.MaxLength];
        while (_running)
        {
            int received;
            try
            {
                received = _socket.Receive(answer);
            }
            catch (SocketException)
            {
                // A timeout, or an ICMP error from an earlier send to a closed port.
                continue;
            }
            catch (ObjectDisposedException)
            {
                return;
            }
            if (received < RadiusPacket.HeaderLength || answer[0] != (byte)RadiusCode.AccountingResponse)
                continue;
            lock (_lock)
            {
                // Only an answer to the identifier's current request verifies: a late answer to an earlier
                // transmission of the same record does not (its authenticator differs), and is dropped.
                if (_byIdentifier[answer[1]] is not { } record
                    || !RadiusCrypto.VerifyResponseAuthenticator(answer.AsSpan(0, received), record.RequestAuthenticator, _secret))
                    continue;
                _byIdentifier[answer[1]] = null;
                record.Identifier = -1;
                record.Acknowledged = true;
                _pending.Remove(record);
            }
            Interlocked.Increment(ref _acked);
            Interlocked.CompareExchange(ref _firstAckSinceMark, Stopwatch.GetTimestamp(), 0);
        }
    }

    public void Dispose()
    {
        _running = false;
        _receiver.Join();
        _socket.Dispose();
    }
}
