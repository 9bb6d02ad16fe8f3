#!/usr/bin/env python3
"""An independent SMTP server (Python's smtpd, up to Python 3.11) on a free loopback port: prints
"port N" once listening, then writes each message it receives, as received, to DIRECTORY/N.eml
(written to a temporary name first, so that a reader never sees half a message)."""
import asyncore
import os
import smtpd
import sys


class Sink(smtpd.SMTPServer):
    def __init__(self, directory):
        super().__init__(("127.0.0.1", 0), None, decode_data=False)
        self.directory = directory
        self.count = 0

    def process_message(self, peer, mailfrom, rcpttos, data, **kwargs):
        self.count += 1
        path = os.path.join(self.directory, "%d.eml" % self.count)
        with open(path + ".tmp", "wb") as f:
            f.write(b"X-Envelope-From: " + mailfrom.encode() + b"\r\n")
            f.write(b"X-Envelope-To: " + ",".join(rcpttos).encode() + b"\r\n")
            f.write(data)
        os.rename(path + ".tmp", path)


sink = Sink(sys.argv[1])
print("port %d" % sink.socket.getsockname()[1], flush=True)
asyncore.loop()
