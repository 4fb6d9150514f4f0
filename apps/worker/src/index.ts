export { startWorker, type WorkerApp } from './worker.js';
