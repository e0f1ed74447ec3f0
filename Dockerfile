FROM python:3.11-slim
WORKDIR /srv/clockwall
COPY pyproject.toml README.md ./
COPY app ./app
COPY static ./static
RUN pip install --no-cache-dir -e .
ENV PYTHONUNBUFFERED=1
EXPOSE 8000
CMD ["clockwall", "serve", "--host", "0.0.0.0", "--port", "8000"]
