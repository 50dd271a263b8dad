import NIOCore
import NIOHTTP1
import ShoalTracker

/// `GET /announce` and `GET /scrape` (BEP 3, 48) of one HTTP connection, through the HTTP server core;
/// other paths are 404, other methods 405. The query is read as raw bytes (binary `info_hash`), never
/// decoded as text first.
///
/// It sits behind NIO's HTTP/1 request decoder (llhttp, with its limits on the request head) and answers
/// each request synchronously on the connection's event loop, in the read that completed it (no task or
/// promise per request), the answer going out through NIO's response encoder. Pipelined requests are answered in
/// order. Keep-alive follows the request (HTTP/1.1 unless `Connection: close`, HTTP/1.0 only with
/// `keep-alive`); otherwise the connection closes once the answer is written and later requests on it are
/// ignored. A request that does not parse gets a 400 and the connection ends.
final class TrackerHTTPHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let tracker: TrackerServer
    // The mutable state is `@exclusivity(unchecked)`: a handler runs on its channel's event loop and never
    // re-enters itself, so the runtime's dynamic access tracking of class properties only costs.
    /// The client's address, read once per connection.
    @exclusivity(unchecked) private var source: TrackerHost?
    /// The head of the request being received (its body, if any, is ignored).
    @exclusivity(unchecked) private var head: HTTPRequestHead?
    /// The answer's body, reused for every request of the connection.
    @exclusivity(unchecked) private var body: [UInt8] = []
    /// The body as it is written, reused too: once the socket took an answer, NIO holds no other reference
    /// to it and `clear()` keeps its memory (a new one only while an answer is still queued).
    @exclusivity(unchecked) private var output: ByteBuffer?
    /// An answer said `Connection: close`: nothing more is answered.
    @exclusivity(unchecked) private var closing = false
    /// This connection in the tracker's list (idle timeout, stop).
    @exclusivity(unchecked) private var connection: TrackerHTTPConnections.Connection?

    init(tracker: TrackerServer) {
        self.tracker = tracker
    }

    func handlerAdded(context: ChannelHandlerContext) {
        source = context.channel.remoteAddress.flatMap(TrackerHost.init(socketAddress:))
        connection = tracker.httpConnections.open(context.channel)
        // The tracker is stopping.
        if connection == nil { context.close(promise: nil) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        if let connection { tracker.httpConnections.closed(connection) }
        connection = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        if source == nil { source = context.channel.remoteAddress.flatMap(TrackerHost.init(socketAddress:)) }
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if let connection { tracker.httpConnections.read(connection) }
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
        case .body:
            break
        case .end:
            guard let head, !closing else { return }
            self.head = nil
            respond(to: head, context: context)
        }
    }

    private func respond(to head: HTTPRequestHead, context: ChannelHandlerContext) {
        var status = HTTPResponseStatus.ok
        body.removeAll(keepingCapacity: true)
        if head.method != .GET && head.method != .HEAD {
            status = .methodNotAllowed
        } else if let source {
            var uri = head.uri
            let served = uri.withUTF8 { utf8 in
                let questionMark = utf8.firstIndex(of: UInt8(ascii: "?")) ?? utf8.endIndex
                let path = UnsafeBufferPointer(rebasing: utf8[..<questionMark])
                let query = UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: utf8[min(questionMark + 1, utf8.endIndex)...]))
                if URLQuery.bytes(path, equal: "/announce") {
                    tracker.handleAnnounce(query: query, from: source, body: &body)
                } else if URLQuery.bytes(path, equal: "/scrape") {
                    tracker.handleScrape(query: query, body: &body)
                } else {
                    return false
                }
                return true
            }
            if !served { status = .notFound }
        } else {
            status = .badRequest
        }
        let keepAlive = head.isKeepAlive
        var headers = HTTPHeaders()
        headers.reserveCapacity(4)
        switch status {
        case .ok: headers.add(name: "Content-Type", value: "text/plain")
        case .methodNotAllowed: headers.add(name: "Allow", value: "GET, HEAD")
        default: break
        }
        headers.add(name: "Content-Length", value: String(body.count))
        if !keepAlive {
            headers.add(name: "Connection", value: "close")
        } else if head.version.minor == 0 {
            headers.add(name: "Connection", value: "keep-alive")
        }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status, headers: headers))), promise: nil)
        // After a `Connection: close` answer the connection closes once its last write is done: the body's
        // (the end writes nothing: the encoder frames by Content-Length), else the end's.
        var written: EventLoopPromise<Void>?
        if !keepAlive {
            closing = true
            let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
            written = context.eventLoop.makePromise()
            written!.futureResult.whenComplete { _ in loopBound.value.close(promise: nil) }
        }
        if head.method != .HEAD && !body.isEmpty {
            var buffer = output ?? context.channel.allocator.buffer(capacity: max(body.count, 512))
            output = nil  // the only reference, so that clearing it keeps its memory
            buffer.clear()
            buffer.writeBytes(body)
            output = buffer
            context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: written)
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        } else {
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: written)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A request that does not parse gets a 400 and the connection ends (NIO's decoder then drops what
        // follows); a reset or any other error just ends it.
        if error is HTTPParserError, context.channel.isActive, !closing {
            closing = true
            let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
            let headers: HTTPHeaders = ["Content-Length": "0", "Connection": "close"]
            context.write(
                wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .badRequest, headers: headers))), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in loopBound.value.close(promise: nil) }
            return
        }
        context.close(promise: nil)
    }
}
