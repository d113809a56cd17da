// dashboard/: the local web page over run directories (atscale dashboard, atscale train --dashboard).
export { startDashboard, type Dashboard, type DashboardOptions } from './server.js';
export { RunSource, JsonlTail, type Row, type BadLine, type RunInfo, type RunUpdate } from './run-source.js';
export { startDashboardThread, type DashboardThread } from './thread.js';
