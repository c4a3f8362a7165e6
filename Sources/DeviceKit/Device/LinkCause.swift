import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#endif

/// Why the device cannot reach its centre, in the words a technician needs: the socket error behind a failed
/// connect, or what the link machine saw, never NIO's internal description of it.
enum LinkCause {
    static func connectFailed(_ error: any Error) -> String {
        switch error {
        case let error as IOError: return errno(error.errnoCode)
        case let error as NIOConnectionError:
            if let first = error.connectionErrors.first { return connectFailed(first.error) }
            return error.dnsAError.map { "the name did not resolve (\($0))" } ?? "\(error)"
        case ChannelError.connectTimeout(let amount):
            return "no answer within \(amount.nanoseconds / 1_000_000_000) s (connection timed out): check the address and the network"
        default: return "\(error)"
        }
    }

    static func errno(_ code: CInt) -> String {
        switch code {
        case ECONNREFUSED: "nothing listens on that port (connection refused)"
        case ETIMEDOUT: "no answer (connection timed out): check the address and the network"
        case ENETUNREACH: "the network is unreachable: check the cable, the Wi-Fi or the mobile signal"
        case EHOSTUNREACH: "no route to the centre's host: check the network and the address"
        case ECONNRESET: "the connection was reset"
        case EADDRNOTAVAIL: "this device has no address to connect from: is the network up?"
        default: String(cString: strerror(code)).lowercased()
        }
    }

    static func lost(_ reason: LinkLossReason, handshakeTimeout: Duration, heartbeat: Duration) -> String {
        switch reason {
        case .connectFailed: "the connection failed"
        case .closed: "the connection was closed"
        case .handshakeTimeout:
            "it did not answer the session start within \(handshakeTimeout.readable): is this the device's centre, and is the device registered there?"
        case .silent: "it stopped answering (nothing for two and a half heartbeat intervals, \(LinkMachine.deadAfter(heartbeat).readable), nor to five probes)"
        case .turnedAway: "it is at its session limit and turned the device away (answered busy): a secondary centre is tried at once"
        case .unanswered: "it did not answer while messages waited"
        case .returningToPrimary: "the device is returning to its primary centre"
        }
    }

    /// `127.0.0.1:7730`, `[::1]:7730`.
    static func address(_ address: SocketAddress) -> String {
        guard let ip = address.ipAddress, let port = address.port else { return "\(address)" }
        return address.protocol == .inet6 ? "[\(ip)]:\(port)" : "\(ip):\(port)"
    }
}
