import CDeviceSys
import Synchronization

/// libudev's netlink monitor for a few subsystems: one `udev` context and one `udev_monitor`, both released by
/// `close()` (or at the latest when the object goes away).
///
/// Not thread-safe: `UdevMonitor` creates, reads and closes it on one dedicated thread.
final class LibudevMonitor {
    /// How many are open in this process: tests check that every one is released.
    static let open = Atomic<Int>(0)

    private var udev: OpaquePointer?
    private var monitor: OpaquePointer?
    /// The netlink socket to poll for readability.
    let fd: CInt

    /// Opens the `udev` netlink group (events after udevd processed them, with properties and links) filtered
    /// to `subsystems`, and starts receiving.
    init(subsystems: [String]) throws(UdevMonitorError) {
        guard let udev = udev_new() else {
            throw UdevMonitorError("libudev could not start (udev_new failed: \(Errno.current))")
        }
        guard let monitor = udev_monitor_new_from_netlink(udev, "udev") else {
            let error = Errno.current
            udev_unref(udev)
            throw UdevMonitorError(
                "cannot open the udev netlink socket (\(error)): the kernel or the container forbids netlink")
        }
        func fail(_ message: String) -> UdevMonitorError {
            udev_monitor_unref(monitor)
            udev_unref(udev)
            return UdevMonitorError(message)
        }
        for subsystem in subsystems {
            let result = udev_monitor_filter_add_match_subsystem_devtype(monitor, subsystem, nil)
            guard result >= 0 else {
                throw fail("cannot filter udev events for subsystem \(subsystem) (\(Errno(rawValue: -result)))")
            }
        }
        let enabled = udev_monitor_enable_receiving(monitor)
        guard enabled >= 0 else { throw fail("cannot receive udev events (\(Errno(rawValue: -enabled)))") }
        let fd = udev_monitor_get_fd(monitor)
        guard fd >= 0 else { throw fail("the udev monitor has no socket (\(Errno(rawValue: -fd)))") }
        self.udev = udev
        self.monitor = monitor
        self.fd = fd
        Self.open.wrappingAdd(1, ordering: .relaxed)
    }

    deinit { close() }

    /// The next queued event, or `nil` when none is waiting (the socket is non-blocking).
    func receive() -> HotplugEvent? {
        guard let monitor, let device = udev_monitor_receive_device(monitor) else { return nil }
        defer { udev_device_unref(device) }
        var properties: [String: String] = [:]
        var entry = udev_device_get_properties_list_entry(device)
        while let current = entry {
            if let name = udev_list_entry_get_name(current) {
                properties[String(cString: name)] = udev_list_entry_get_value(current).map { String(cString: $0) } ?? ""
            }
            entry = udev_list_entry_get_next(current)
        }
        return HotplugEvent(
            action: .init(udevName: udev_device_get_action(device).map { String(cString: $0) } ?? "change"),
            subsystem: udev_device_get_subsystem(device).map { String(cString: $0) } ?? "",
            sysname: udev_device_get_sysname(device).map { String(cString: $0) } ?? "",
            devnode: udev_device_get_devnode(device).map { String(cString: $0) },
            properties: properties)
    }

    /// Drops this object's references to the monitor (which closes its socket) and to the context. Returns
    /// whether libudev freed both, i.e. nothing else held them. Closing twice does nothing.
    @discardableResult
    func close() -> Bool {
        guard udev != nil || monitor != nil else { return true }
        // The unref functions return NULL once the last reference is gone and the object freed.
        let monitorFreed = monitor.map { udev_monitor_unref($0) == nil } ?? true
        let udevFreed = udev.map { udev_unref($0) == nil } ?? true
        monitor = nil
        udev = nil
        Self.open.wrappingSubtract(1, ordering: .relaxed)
        return monitorFreed && udevFreed
    }
}
