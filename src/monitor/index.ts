// monitor/: where a run's numbers go (metrics.jsonl, TensorBoard event files, CSV) and the one
// progress display of long commands. Nothing here knows about models or the runtime.
export { crc32c, maskCrc } from './crc32c.js';
export { TensorBoardWriter, tfrecord, scalarEvent, fileVersionEvent } from './tfevents.js';
export { CsvWriter } from './csv.js';
export { openMonitors, sectionDir, scalarsOf, SCALAR_TAGS, JsonlMonitor, TensorBoardMonitor, CsvMonitor, type Monitor, type MetricRecord, type MonitorOptions, type MonitorSection } from './monitor.js';
export { ProgressBar, formatDuration, formatCount, etaSeconds, type ProgressBarOptions } from './progress-bar.js';
