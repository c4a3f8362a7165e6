/// The console's page, script, style and login page, embedded in the binary at build time.
enum ConsoleAssets {
    static let consoleHTML = PackageResources.console_html
    static let consoleJS = PackageResources.console_js
    static let consoleCSS = PackageResources.console_css
    static let loginHTML = PackageResources.login_html
    /// Every string the page shows, in English (`en`) and Simplified Chinese (`zh`).
    static let catalogue = PackageResources.catalogue_json
}
