/// The device's durable outbox: alarms and events that the centre has not yet acknowledged.
///
/// An item is on durable storage before `enqueue` returns, and only then may the device show
/// "alarm registered". It leaves the outbox only on the centre's `ack`. After a crash, kill -9 or power cut
/// everything still in it is sent again on restart (same id, so the centre dispatches it once).
///
/// The message id is drawn inside the same transaction that stores the message, from one counter that never
/// goes back, so an alarm id is unique for the life of the device (protocol.md §4.7).
public protocol Outbox: Sendable {
    /// Draws the next message id, builds the message with it, stores it durably, and returns it.
    func enqueue(_ build: @Sendable (UInt32) -> Message) throws(OutboxError) -> Message
    /// Up to `limit` pending messages: alarms and cancels first, then the rest; oldest first within each.
    func pending(limit: Int) throws(OutboxError) -> [Message]
    /// Removes the message with `id` (the centre acknowledged it). Removing an unknown id is not an error.
    func remove(id: UInt32) throws(OutboxError)
    /// How many messages wait.
    func count() throws(OutboxError) -> Int
}

/// The outbox's storage failed. The device shows *fault* and keeps the alarm in memory and on the wire.
public struct OutboxError: Error, Hashable, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

extension Message {
    /// Priority in the outbox: a person's call for help goes before routine events.
    public var outboxPriority: Int {
        switch self {
        case .alarm, .alarmCancel: 0
        default: 1
        }
    }
}
