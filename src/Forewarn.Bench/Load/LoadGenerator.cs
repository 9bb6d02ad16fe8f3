using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Forewarn.Protocol.Radius;
using HdrHistogram;

namespace Forewarn.Bench.Load;

/// <summary>
/// A RADIUS load generator that is meant never to be the bottleneck: one connected UDP socket per lane,
/// each with its own 256 identifiers and a thread blocked in receive that verifies the answer and, in a
/// closed loop, sends the next request from the same thread (no tasks, no queues, no allocation per
/// request). An open loop is paced by one thread on a fixed schedule; latency is measured from the
/// scheduled time. Timeouts are found by a scan every 10 ms.
/// </summary>
public sealed class LoadGenerator
{
    private readonly LoadOptions _options;
    private readonly Lane[] _lanes;
    private long _measureFrom = long.MaxValue;
    private long _measureUntil = long.MaxValue;
    private volatile bool _sending = true;

    public LoadGenerator(LoadOptions options)
    {
        options.Validate();
        _options = options;
        _lanes = new Lane[options.Sockets];
        int perLane = options.Outstanding / options.Sockets, extra = options.Outstanding % options.Sockets;
        for (int i = 0; i < _lanes.Length; i++)
            _lanes[i] = new Lane(this, i, options.SourceAddresses[i % options.SourceAddresses.Count], options.OpenLoop ? 0 : perLane + (i < extra ? 1 : 0));
    }

    /// <summary>Runs warm-up, the measured window and the drain (up to one timeout), then reports.</summary>
    public async Task<LoadReport> RunAsync(Action<LoadProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        var threads = new List<Thread>();
        try
        {
            foreach (var lane in _lanes)
                threads.Add(Start(lane.ReceiveLoop, $"load-receive-{lane.Index}"));
            long start = Stopwatch.GetTimestamp();
            _measureFrom = start + Ticks(_options.Warmup);
            _measureUntil = _measureFrom + Ticks(_options.Duration);
            if (_options.OpenLoop)
                threads.Add(Start(() => Pace(start), "load-pacer"));
            else
                foreach (var lane in _lanes)
                    lane.Fill();

            var cpuAtStart = TimeSpan.Zero;
            TimeSpan? serverCpuAtStart = null;
            bool measuring = false;
            double total = (_options.Warmup + _options.Duration).TotalSeconds;
            while (Stopwatch.GetTimestamp() < _measureUntil && !cancellationToken.IsCancellationRequested)
            {
                await Task.Delay(10, CancellationToken.None).ConfigureAwait(false);
                long now = Stopwatch.GetTimestamp();
                if (!measuring && now >= _measureFrom)
                {
                    measuring = true;
                    cpuAtStart = Process.GetCurrentProcess().TotalProcessorTime;
                    if (_options.ServerProcessId is int pid)
                        serverCpuAtStart = ServerProcess.CpuTime(pid);
                }
                foreach (var lane in _lanes)
                    lane.ExpireTimeouts(now);
                progress?.Invoke(new LoadProgress(Stopwatch.GetElapsedTime(start).TotalSeconds, total, Sum(l => l.Answered), Sum(l => l.Timeouts), measuring));
            }
            var cpu = Process.GetCurrentProcess().TotalProcessorTime - cpuAtStart;
            TimeSpan? serverCpu = _options.ServerProcessId is int serverPid && ServerProcess.CpuTime(serverPid) is { } end && serverCpuAtStart is { } begin ? end - begin : null;
            long? serverResident = _options.ServerProcessId is int rssPid ? ServerProcess.ResidentBytes(rssPid) : null;
            _sending = false;
            // Drain: what is still outstanding gets its full timeout.
            long drainUntil = Stopwatch.GetTimestamp() + Ticks(_options.Timeout) + Ticks(TimeSpan.FromMilliseconds(20));
            while (Stopwatch.GetTimestamp() < drainUntil && _lanes.Any(l => l.InFlight > 0))
            {
                await Task.Delay(10, CancellationToken.None).ConfigureAwait(false);
                foreach (var lane in _lanes)
                    lane.ExpireTimeouts(Stopwatch.GetTimestamp());
            }
            foreach (var lane in _lanes)
                lane.ExpireTimeouts(long.MaxValue);
            return Report(cpu, serverCpu, serverResident);
        }
        finally
        {
            _sending = false;
            foreach (var lane in _lanes)
                lane.Dispose();
            foreach (var thread in threads)
                thread.Join();
        }
    }

    private long Sum(Func<Lane, long> value)
    {
        long total = 0;
        foreach (var lane in _lanes)
            total += value(lane);
        return total;
    }

    private static Thread Start(ThreadStart body, string name)
    {
        var thread = new Thread(body) { IsBackground = true, Name = name };
        thread.Start();
        return thread;
    }

    private static long Ticks(TimeSpan span) => (long)(span.TotalSeconds * Stopwatch.Frequency);

    private bool Measured(long at) => at >= _measureFrom && at < _measureUntil;

    /// <summary>Open loop: request n is due at start + n / rate, on lane n mod lanes.</summary>
    private void Pace(long start)
    {
        long n = 0;
        while (_sending)
        {
            long now = Stopwatch.GetTimestamp();
            long due = start + (long)(_options.SecondsUntil(n) * Stopwatch.Frequency);
            if (due > now)
            {
                if (due - now > Stopwatch.Frequency / 500)
                    Thread.Sleep(1);
                else
                    Thread.SpinWait(20);
                continue;
            }
            _lanes[n % _lanes.Length].SendScheduled(due);
            n++;
        }
    }

    private LoadReport Report(TimeSpan cpu, TimeSpan? serverCpu, long? serverResident)
    {
        var histogram = new LongHistogram(60_000_000, 3);
        foreach (var lane in _lanes)
            histogram.Add(lane.Histogram);
        double seconds = _options.Duration.TotalSeconds;
        long answered = Sum(l => l.Answered);
        double Ms(double microseconds) => Math.Round(microseconds / 1000.0, 3);
        // HdrHistogram throws on percentiles of an empty histogram (nothing answered): report zeros.
        double At(double percentile) => histogram.TotalCount == 0 ? 0 : Ms(histogram.GetValueAtPercentile(percentile));
        return new LoadReport
        {
            Kind = _options.Kind.ToString().ToLowerInvariant(),
            Mode = _options.OpenLoop ? "open" : "closed",
            Server = _options.Server.ToString(),
            Outstanding = _options.OpenLoop ? 0 : _options.Outstanding,
            OfferedRate = _options.Rate,
            Sockets = _options.Sockets,
            Seconds = seconds,
            Sent = Sum(l => l.Sent),
            Answered = answered,
            Accepted = Sum(l => l.Accepted),
            Rejected = answered - Sum(l => l.Accepted),
            Timeouts = Sum(l => l.Timeouts),
            Invalid = Sum(l => l.Invalid),
            Late = Sum(l => l.Late),
            Unsent = Sum(l => l.Unsent),
            Throughput = Math.Round(answered / seconds, 1),
            LatencyMeanMs = histogram.TotalCount == 0 ? 0 : Ms(histogram.GetMean()),
            LatencyP50Ms = At(50),
            LatencyP90Ms = At(90),
            LatencyP99Ms = At(99),
            LatencyP999Ms = At(99.9),
            LatencyMaxMs = histogram.TotalCount == 0 ? 0 : Ms(histogram.GetMaxValue()),
            GeneratorCpuMicrosecondsPerRequest = answered == 0 ? 0 : Math.Round(cpu.TotalMicroseconds / answered, 2),
            ServerCpuMicrosecondsPerRequest = serverCpu is { } s && answered > 0 ? Math.Round(s.TotalMicroseconds / answered, 2) : null,
            ServerResidentMiB = serverResident is { } r ? Math.Round(r / 1048576.0, 1) : null,
        };
    }

    /// <summary>One socket, its identifiers and its receiving thread. Its lock guards the slots, the builder and the counters.</summary>
    private sealed class Lane : IDisposable
    {
        private readonly LoadGenerator _owner;
        private readonly LoadOptions _options;
        private readonly Socket _socket;
        private readonly RequestBuilder _builder;
        private readonly Lock _gate = new();
        private readonly byte[] _send = new byte[RadiusPacket.MaxLength];
        private readonly byte[] _receive = new byte[RadiusPacket.MaxLength + 1];
        private readonly byte[] _authenticators = new byte[256 * 16];
        private readonly long[] _sentAt = new long[256];      // 0: free
        private readonly bool[] _measured = new bool[256];
        private readonly Stack<byte> _free = new(256);
        private readonly int _slots;
        private readonly long _timeoutTicks;

        public readonly LongHistogram Histogram = new(TimeSpan.FromMinutes(1).Ticks / 10, 3);
        public int Index { get; }
        public long Sent, Answered, Accepted, Timeouts, Invalid, Late, Unsent;
        public int InFlight;

        public Lane(LoadGenerator owner, int index, IPAddress source, int slots)
        {
            _owner = owner;
            _options = owner._options;
            Index = index;
            _slots = slots;
            _timeoutTicks = Ticks(_options.Timeout);
            _builder = new RequestBuilder(_options, index, source);
            _socket = new Socket(_options.Server.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
            _socket.ReceiveBufferSize = 4 << 20;
            _socket.Bind(new IPEndPoint(source, 0));
            _socket.Connect(_options.Server);
            for (int id = 255; id >= 0; id--)
                _free.Push((byte)id);
        }

        /// <summary>Closed loop: puts this lane's share of the outstanding requests in flight.</summary>
        public void Fill()
        {
            lock (_gate)
            {
                for (int i = 0; i < _slots && _free.Count > 0; i++)
                    SendLocked(_free.Pop(), Stopwatch.GetTimestamp());
            }
        }

        public void SendScheduled(long due)
        {
            lock (_gate)
            {
                if (_free.Count == 0)
                {
                    if (_owner.Measured(due))
                        Unsent++;
                    return;
                }
                SendLocked(_free.Pop(), due);
            }
        }

        private void SendLocked(byte id, long stamp)
        {
            int length = _builder.Build(_send, id);
            _send.AsSpan(4, 16).CopyTo(_authenticators.AsSpan(id * 16, 16));
            _sentAt[id] = stamp;
            bool measured = _owner.Measured(stamp);
            _measured[id] = measured;
            if (measured)
                Sent++;
            InFlight++;
            try
            {
                _socket.Send(_send.AsSpan(0, length));
            }
            catch (SocketException)
            {
                // Counted as a timeout when no answer comes (e.g. the server's port is closed).
            }
            catch (ObjectDisposedException)
            {
            }
        }

        public void ReceiveLoop()
        {
            while (true)
            {
                int length;
                try
                {
                    length = _socket.Receive(_receive);
                }
                catch (SocketException e) when (e.SocketErrorCode is SocketError.ConnectionRefused or SocketError.ConnectionReset or SocketError.MessageSize)
                {
                    continue;
                }
                catch (Exception e) when (e is SocketException or ObjectDisposedException)
                {
                    return;
                }
                long now = Stopwatch.GetTimestamp();
                lock (_gate)
                    OnAnswerLocked(_receive.AsSpan(0, length), now);
            }
        }

        private void OnAnswerLocked(ReadOnlySpan<byte> datagram, long now)
        {
            if (RadiusPacket.TryParse(datagram, out var packet) != DropReason.None)
            {
                Invalid++;
                return;
            }
            byte id = packet.Identifier;
            long sentAt = _sentAt[id];
            var authenticator = _authenticators.AsSpan(id * 16, 16);
            if (sentAt == 0 || !RadiusCrypto.VerifyResponseAuthenticator(datagram, authenticator, _options.Secret))
            {
                // An answer to an earlier use of this identifier (its request timed out), or a forgery.
                Late++;
                return;
            }
            bool valid = RequestBuilder.IsAnswer(_options.Kind, packet.Code, out bool accepted)
                && (!packet.HasAttribute(AttributeTypes.MessageAuthenticator) || RadiusCrypto.VerifyMessageAuthenticator(packet, _options.Secret, authenticator));
            if (_measured[id])
            {
                if (valid)
                {
                    Answered++;
                    if (accepted)
                        Accepted++;
                    Histogram.RecordValue(Math.Max(1, Stopwatch.GetElapsedTime(sentAt, now).Ticks / TimeSpan.TicksPerMicrosecond));
                }
                else
                {
                    Invalid++;
                }
            }
            Release(id);
            if (!_options.OpenLoop && _owner._sending)
                SendLocked(_free.Pop(), now);
        }

        private void Release(byte id)
        {
            _sentAt[id] = 0;
            _free.Push(id);
            InFlight--;
        }

        /// <summary>Requests older than the timeout are counted lost; a closed loop sends a fresh one in their place.</summary>
        public void ExpireTimeouts(long now)
        {
            lock (_gate)
            {
                for (int id = 0; id < 256; id++)
                {
                    long sentAt = _sentAt[id];
                    if (sentAt == 0 || now - sentAt < _timeoutTicks)
                        continue;
                    if (_measured[id])
                        Timeouts++;
                    Release((byte)id);
                    if (!_options.OpenLoop && _owner._sending)
                        SendLocked(_free.Pop(), Stopwatch.GetTimestamp());
                }
            }
        }

        public void Dispose() => _socket.Dispose();
    }
}
