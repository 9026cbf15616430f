export { buildReportData, combineReports, type Front, paretoJson, type ReportData, type TrialRow } from "./data.ts";
export { analyse, type Analysis } from "./analysis.ts";
export { analysisTables, frontTables, renderMarkdown } from "./markdown.ts";
export { REPORT_FILES, writeReportFiles } from "./write.ts";
