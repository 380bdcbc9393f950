// Node-RED settings for the end-to-end test: loopback only, the port given on the command line
// (0 = any free one), no credentials file encryption prompt, no telemetry, no editor tours.
module.exports = {
    uiHost: '127.0.0.1',
    flowFile: 'flows.json',
    credentialSecret: false,
    telemetry: { enabled: false },
    diagnostics: { enabled: false, ui: false },
    editorTheme: { tours: false, palette: { catalogues: [] } },
    logging: { console: { level: 'info', metrics: false, audit: false } },
};
