#!/usr/bin/env python3
"""An independent RADIUS client (pyrad) against a Forewarn server: PAP accept, PAP reject, accounting.
pyrad's Client.SendPacket returns a reply only once VerifyReply has checked its Response Authenticator
against the request; a reply that does not verify is ignored and the call ends in a Timeout."""
import sys
import tempfile
import os
from pyrad.client import Client
from pyrad.dictionary import Dictionary
import pyrad.packet

DICTIONARY = """
ATTRIBUTE User-Name 1 string
ATTRIBUTE User-Password 2 string
ATTRIBUTE NAS-IP-Address 4 ipaddr
ATTRIBUTE Reply-Message 18 string
ATTRIBUTE Session-Timeout 27 integer
ATTRIBUTE Framed-IP-Address 8 ipaddr
ATTRIBUTE Class 25 octets
ATTRIBUTE Filter-Id 11 string
ATTRIBUTE Acct-Status-Type 40 integer
ATTRIBUTE Acct-Session-Id 44 string
ATTRIBUTE Message-Authenticator 80 octets
ATTRIBUTE Vendor-Specific 26 octets
VALUE Acct-Status-Type Start 1
"""

def main():
    host, auth_port, acct_port, secret, user, password = sys.argv[1:7]
    with tempfile.NamedTemporaryFile("w", suffix=".dict", delete=False) as f:
        f.write(DICTIONARY)
        path = f.name
    try:
        client = Client(server=host, authport=int(auth_port), acctport=int(acct_port), secret=secret.encode(), dict=Dictionary(path))
        client.timeout = 3
        client.retries = 2

        def auth(pw):
            req = client.CreateAuthPacket(code=pyrad.packet.AccessRequest, User_Name=user)
            req["User-Password"] = req.PwCrypt(pw)
            req["NAS-IP-Address"] = "127.0.0.1"
            return client.SendPacket(req)

        reply = auth(password)
        print("auth:", "Access-Accept" if reply.code == pyrad.packet.AccessAccept else reply.code)
        reply = auth("definitely-wrong")
        print("wrong:", "Access-Reject" if reply.code == pyrad.packet.AccessReject else reply.code)

        req = client.CreateAcctPacket(User_Name=user)
        req["Acct-Status-Type"] = "Start"
        req["Acct-Session-Id"] = "pyrad-1"
        req["NAS-IP-Address"] = "127.0.0.1"
        reply = client.SendPacket(req)
        ok = reply.code == pyrad.packet.AccountingResponse
        print("acct:", "Accounting-Response verified" if ok else "bad reply")
    finally:
        os.unlink(path)

if __name__ == "__main__":
    main()
