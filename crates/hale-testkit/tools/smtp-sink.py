#!/usr/bin/env python3
"""A real SMTP server for Hale's tests: accepts every message on 127.0.0.1:PORT and writes
each one, as received, to DIR/<n>.eml. Python 3.11's standard library only (smtpd), so the
tests need nothing installed.

    python3 smtp-sink.py PORT DIR
"""
import os
import sys
import warnings

warnings.simplefilter("ignore", DeprecationWarning)
import asyncore  # noqa: E402
import smtpd  # noqa: E402


class Sink(smtpd.SMTPServer):
    count = 0

    def process_message(self, peer, mailfrom, rcpttos, data, **kwargs):
        Sink.count += 1
        text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
        path = os.path.join(self.folder, f"{Sink.count:04d}.eml")
        with open(path + ".part", "w", encoding="utf-8") as f:
            f.write("X-Envelope-To: " + ",".join(rcpttos) + "\n" + text)
        os.rename(path + ".part", path)


def main():
    port, folder = int(sys.argv[1]), sys.argv[2]
    os.makedirs(folder, exist_ok=True)
    server = Sink(("127.0.0.1", port), None, decode_data=False)
    server.folder = folder
    print("ready", flush=True)
    asyncore.loop()


if __name__ == "__main__":
    main()
