"""The gateway plus one long-lived streaming route, for the connection-limit
scenario: `nameko run tests.faults.streaming_gateway` in place of `gateway`.

GET /test-stream is wired to gateway.limits the way a server-sent-events
route is: it takes a stream slot for its connection (a 503 when MAX_STREAMS
are open) and then sends an event every STREAM_BEAT_SECONDS until the
client goes away.
"""

import eventlet
from werkzeug.wrappers import Response

from gateway.http import json_http
from gateway.limits import open_stream
from gateway.service import GatewayService

STREAM_BEAT_SECONDS = 0.2


class StreamingGateway(GatewayService):
    @json_http("GET", "/test-stream", costly=False)
    def test_stream(self, request):
        slot = open_stream(request)
        # eventlet holds back writes until 4 KiB have gathered; an event
        # stream sends each event as it comes.
        request.environ["eventlet.minimum_write_chunk_size"] = 0

        def beats():
            try:
                while True:
                    yield b"data: beat\n\n"
                    eventlet.sleep(STREAM_BEAT_SECONDS)
            finally:
                slot.release()

        return Response(beats(), mimetype="text/event-stream")
