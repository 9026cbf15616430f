export { buildReportData, type Front, paretoJson, type ReportData, type TrialRow } from "./data.ts";
export { frontTables, renderMarkdown } from "./markdown.ts";
