/** Charts with Chart.js: a line of usage over time, bars of a budget's counters. */
import {
  BarController,
  BarElement,
  CategoryScale,
  Chart,
  Legend,
  LinearScale,
  LineController,
  LineElement,
  PointElement,
  Tooltip,
} from 'chart.js';
import { useEffect, useRef } from 'react';

Chart.register(
  LineController,
  LineElement,
  PointElement,
  BarController,
  BarElement,
  CategoryScale,
  LinearScale,
  Legend,
  Tooltip,
);

export interface Series {
  label: string;
  values: number[];
}

const COLOURS = ['#2463eb', '#e2731f', '#17925a', '#9b3bd1', '#c62f2f', '#5b6675'];

export function ChartView(props: {
  kind: 'line' | 'bar';
  labels: string[];
  series: Series[];
  stacked?: boolean;
  testId?: string;
}) {
  const canvas = useRef<HTMLCanvasElement>(null);
  const total = props.series.reduce((sum, s) => sum + s.values.reduce((a, b) => a + b, 0), 0);
  useEffect(() => {
    if (!canvas.current) return;
    const chart = new Chart(canvas.current, {
      type: props.kind,
      data: {
        labels: props.labels,
        datasets: props.series.map((s, i) => ({
          label: s.label,
          data: s.values,
          borderColor: COLOURS[i % COLOURS.length],
          backgroundColor: COLOURS[i % COLOURS.length],
          tension: 0.25,
        })),
      },
      options: {
        animation: false,
        responsive: true,
        maintainAspectRatio: false,
        scales: {
          x: { stacked: props.stacked ?? false },
          y: { stacked: props.stacked ?? false, beginAtZero: true },
        },
      },
    });
    return () => chart.destroy();
  }, [props.kind, props.labels, props.series, props.stacked]);
  return (
    <div style={{ height: 260 }} data-testid={props.testId} data-total={total}>
      <canvas ref={canvas} />
    </div>
  );
}
